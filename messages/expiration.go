package messages

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxPhraseCount bounds n in "<n> <unit>" so that date arithmetic cannot overflow;
// 100000 days is about 274 years, well past any retention policy.
const maxPhraseCount = 100000

// Period is a parsed expiration such as "4 years 3 months 2 weeks 1 day".
type Period struct {
	Years, Months, Weeks, Days int
}

// IsZero reports whether p adds nothing.
func (p Period) IsZero() bool { return p == Period{} }

// String renders p in the canonical "<n> <unit>" form, largest unit first.
func (p Period) String() string {
	var parts []string
	for _, u := range []struct {
		n    int
		name string
	}{{p.Years, "year"}, {p.Months, "month"}, {p.Weeks, "week"}, {p.Days, "day"}} {
		switch {
		case u.n == 1:
			parts = append(parts, "1 "+u.name)
		case u.n > 1:
			parts = append(parts, strconv.Itoa(u.n)+" "+u.name+"s")
		}
	}
	return strings.Join(parts, " ")
}

// ParseExpiration parses one or more "<n> <unit>" phrases separated by white
// space, where n is a positive integer and unit is year, month, week or day,
// singular or plural, in any case. Repeated units add up.
func ParseExpiration(s string) (Period, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return Period{}, errors.New(`must not be empty: use phrases like "2 years 1 month", or omit it (or null) for no expiration`)
	}
	if len(fields)%2 != 0 {
		return Period{}, fmt.Errorf("%q is not a sequence of \"<number> <unit>\" phrases", s)
	}
	var p Period
	for i := 0; i < len(fields); i += 2 {
		num, unit := fields[i], fields[i+1]
		n, err := strconv.Atoi(num)
		if err != nil || strings.HasPrefix(num, "+") || strings.HasPrefix(num, "-") {
			return Period{}, fmt.Errorf("%q is not a positive integer in %q", num, s)
		}
		if n < 1 {
			return Period{}, fmt.Errorf("count must be positive, got %d in %q", n, s)
		}
		if n > maxPhraseCount {
			return Period{}, fmt.Errorf("count %d is larger than %d in %q", n, maxPhraseCount, s)
		}
		var dst *int
		switch strings.ToLower(unit) {
		case "year", "years":
			dst = &p.Years
		case "month", "months":
			dst = &p.Months
		case "week", "weeks":
			dst = &p.Weeks
		case "day", "days":
			dst = &p.Days
		default:
			return Period{}, fmt.Errorf("unknown unit %q (want year, month, week or day)", unit)
		}
		*dst += n
		if *dst > maxPhraseCount {
			return Period{}, fmt.Errorf("%s adds up to more than %d", unit, maxPhraseCount)
		}
	}
	return p, nil
}

// AddTo returns t plus p in UTC. Years and months are added together first and
// the day is clamped to the end of the resulting month (Jan 31 + 1 month is
// Feb 28 or 29; Feb 29 + 1 year is Feb 28); weeks and days are added after that.
func (p Period) AddTo(t time.Time) time.Time {
	t = t.UTC()
	months := int(t.Month()) - 1 + p.Years*12 + p.Months
	year := t.Year() + months/12
	month := time.Month(months%12 + 1)
	day := min(t.Day(), daysIn(year, month))
	out := time.Date(year, month, day, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	return out.AddDate(0, 0, p.Weeks*7+p.Days)
}

func daysIn(year int, month time.Month) int {
	// Day 0 of the next month is the last day of this one.
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
