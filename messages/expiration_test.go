package messages_test

import (
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/messages"
)

func TestParseExpiration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    messages.Period
		wantErr string
	}{
		{name: "original_example", in: "4 years 3 months 2 weeks 1 day", want: messages.Period{Years: 4, Months: 3, Weeks: 2, Days: 1}},
		{name: "singular_units", in: "1 year 1 month 1 week 1 day", want: messages.Period{Years: 1, Months: 1, Weeks: 1, Days: 1}},
		{name: "case_insensitive", in: "2 YEARS 1 Month", want: messages.Period{Years: 2, Months: 1}},
		{name: "any_order_and_extra_space", in: "  3 days\t2 weeks ", want: messages.Period{Weeks: 2, Days: 3}},
		{name: "repeated_units_add_up", in: "1 day 2 days", want: messages.Period{Days: 3}},
		{name: "plural_with_one", in: "1 days", want: messages.Period{Days: 1}},
		{name: "empty", in: "", wantErr: "must not be empty"},
		{name: "blank", in: "   ", wantErr: "must not be empty"},
		{name: "hour_is_not_a_unit", in: "1 hour", wantErr: `unknown unit "hour"`},
		{name: "forever", in: "forever", wantErr: "is not a sequence"},
		{name: "no_space", in: "10days", wantErr: "is not a sequence"},
		{name: "zero", in: "0 days", wantErr: "must be positive"},
		{name: "negative", in: "-1 day", wantErr: "is not a positive integer"},
		{name: "plus_sign", in: "+1 day", wantErr: "is not a positive integer"},
		{name: "fraction", in: "1.5 years", wantErr: "is not a positive integer"},
		{name: "missing_unit", in: "1 year 2", wantErr: "is not a sequence"},
		{name: "unit_first", in: "year 1", wantErr: "is not a positive integer"},
		{name: "huge", in: "99999999999999999999 days", wantErr: "is not a positive integer"},
		{name: "too_large", in: "100001 days", wantErr: "larger than"},
		{name: "sum_too_large", in: "60000 days 60000 days", wantErr: "more than"},
		{name: "comma", in: "1 year, 2 days", wantErr: `unknown unit "year,"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := messages.ParseExpiration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseExpiration(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseExpiration(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPeriodAddTo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		from   string
		period messages.Period
		want   string
	}{
		{name: "original_example", from: "2017-09-11T20:24:43+00:00", period: messages.Period{Years: 4, Months: 3, Weeks: 2, Days: 1}, want: "2021-12-26T20:24:43Z"},
		{name: "jan31_plus_month_clamps", from: "2021-01-31T10:00:00Z", period: messages.Period{Months: 1}, want: "2021-02-28T10:00:00Z"},
		{name: "jan31_plus_month_leap", from: "2024-01-31T10:00:00Z", period: messages.Period{Months: 1}, want: "2024-02-29T10:00:00Z"},
		{name: "feb29_plus_year", from: "2024-02-29T00:00:00Z", period: messages.Period{Years: 1}, want: "2025-02-28T00:00:00Z"},
		{name: "feb29_plus_4_years", from: "2024-02-29T00:00:00Z", period: messages.Period{Years: 4}, want: "2028-02-29T00:00:00Z"},
		{name: "years_and_months_together", from: "2023-01-31T00:00:00Z", period: messages.Period{Years: 1, Months: 1}, want: "2024-02-29T00:00:00Z"},
		{name: "clamp_then_days", from: "2021-01-31T00:00:00Z", period: messages.Period{Months: 1, Days: 1}, want: "2021-03-01T00:00:00Z"},
		{name: "month_rolls_year", from: "2021-11-30T00:00:00Z", period: messages.Period{Months: 3}, want: "2022-02-28T00:00:00Z"},
		{name: "weeks", from: "2021-12-30T00:00:00Z", period: messages.Period{Weeks: 1}, want: "2022-01-06T00:00:00Z"},
		{name: "offset_converted_to_utc", from: "2021-01-31T23:30:00-02:00", period: messages.Period{Months: 1}, want: "2021-03-01T01:30:00Z"},
		{name: "zero_period", from: "2021-05-05T05:05:05+02:00", period: messages.Period{}, want: "2021-05-05T03:05:05Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, err := time.Parse(time.RFC3339, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.period.AddTo(from)
			if got.Format(time.RFC3339) != tt.want || got.Location() != time.UTC {
				t.Fatalf("%+v.AddTo(%s) = %s (%s), want %s UTC", tt.period, tt.from, got.Format(time.RFC3339), got.Location(), tt.want)
			}
		})
	}
}

func TestPeriodString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"1 DAY 4 Years":         "4 years 1 day",
		"2 weeks 1 month":       "1 month 2 weeks",
		"1 year 1 year 1 month": "2 years 1 month",
	} {
		p, err := messages.ParseExpiration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.String(); got != want {
			t.Errorf("ParseExpiration(%q).String() = %q, want %q", in, got, want)
		}
	}
}
