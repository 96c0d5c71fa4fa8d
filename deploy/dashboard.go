package deploy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DashboardFile is the Grafana dashboard, relative to the repository root,
// written from Dashboard (see TestDashboard_file).
const DashboardFile = "deploy/grafana/recording-storage.json"

// dashboardWidth is the width of a Grafana dashboard in grid columns.
const dashboardWidth = 24

// panel is one panel of the dashboard.
type panel struct {
	title   string
	kind    string // "stat" or "timeseries"
	width   int    // grid columns
	height  int    // grid rows
	unit    string // Grafana unit, e.g. "Bps", "s", "short"
	targets []target
}

// target is one query of a panel.
type target struct {
	expr   string
	legend string
}

// row is a titled row of panels, laid out left to right.
type row struct {
	title  string
	panels []panel
}

// dashboardRows returns the dashboard's panels, top to bottom. Every
// metric they name is on /metrics of the service
// (TestMetrics_named_by_rules_and_dashboard).
func dashboardRows() []row {
	return []row{
		{title: "Overview", panels: []panel{
			{title: "Jobs transferred (1h)", kind: "stat", width: 6, height: 4, unit: "short", targets: []target{
				{expr: `sum(increase(recording_storage_handler_execution_time_seconds_count{handler_name="transfer",success="true"}[1h]))`}}},
			{title: "Poisoned (1h)", kind: "stat", width: 6, height: 4, unit: "short", targets: []target{
				{expr: `sum(increase(recording_storage_poisoned_total[1h]))`}}},
			{title: "Transfers in flight", kind: "stat", width: 6, height: 4, unit: "short", targets: []target{
				{expr: `sum(recording_storage_transfers_in_flight)`}}},
			{title: "Since the last sweep", kind: "stat", width: 6, height: 4, unit: "s", targets: []target{
				{expr: `time() - max(recording_storage_sweep_last_success_timestamp_seconds)`}}},
		}},
		{title: "Stages", panels: []panel{
			{title: "Jobs per stage", kind: "timeseries", width: 12, height: 8, unit: "ops", targets: []target{
				{expr: `sum by (handler_name, success) (rate(recording_storage_handler_execution_time_seconds_count[5m]))`,
					legend: "{{handler_name}} success={{success}}"}}},
			{title: "Handling time per stage (p95)", kind: "timeseries", width: 12, height: 8, unit: "s", targets: []target{
				{expr: `histogram_quantile(0.95, sum by (le, handler_name) (rate(recording_storage_handler_execution_time_seconds_bucket[5m])))`,
					legend: "{{handler_name}}"}}},
		}},
		{title: "Transfer", panels: []panel{
			{title: "Bytes per second", kind: "timeseries", width: 8, height: 8, unit: "Bps", targets: []target{
				{expr: `sum(rate(recording_storage_s3_read_bytes_total[5m]))`, legend: "read from S3"},
				{expr: `sum(rate(recording_storage_uploaded_bytes_total[5m]))`, legend: "uploaded to DRACOON"}}},
			{title: "Transfer duration", kind: "timeseries", width: 8, height: 8, unit: "s", targets: []target{
				{expr: `histogram_quantile(0.5, sum by (le) (rate(recording_storage_transfer_duration_seconds_bucket{outcome="ok"}[15m])))`, legend: "p50"},
				{expr: `histogram_quantile(0.95, sum by (le) (rate(recording_storage_transfer_duration_seconds_bucket{outcome="ok"}[15m])))`, legend: "p95"}}},
			{title: "Transfers in flight and outcomes", kind: "timeseries", width: 8, height: 8, unit: "short", targets: []target{
				{expr: `sum(recording_storage_transfers_in_flight)`, legend: "in flight"},
				{expr: `sum by (outcome) (increase(recording_storage_transfer_duration_seconds_count[15m]))`, legend: "{{outcome}} (15m)"}}},
		}},
		{title: "Queues", panels: []panel{
			{title: "Queue depth", kind: "timeseries", width: 12, height: 8, unit: "short", targets: []target{
				{expr: `max by (queue, state) (recording_storage_queue_messages)`, legend: "{{queue}} {{state}}"}}},
			{title: "Oldest message age", kind: "timeseries", width: 12, height: 8, unit: "s", targets: []target{
				{expr: `max by (queue) (recording_storage_queue_oldest_message_age_seconds)`, legend: "{{queue}}"}}},
		}},
		{title: "Failures and keys", panels: []panel{
			{title: "Poisoned by stage and class", kind: "timeseries", width: 6, height: 8, unit: "short", targets: []target{
				{expr: `sum by (stage, class) (increase(recording_storage_poisoned_total[15m]))`, legend: "{{stage}} {{class}}"}}},
			{title: "Retries by stage", kind: "timeseries", width: 6, height: 8, unit: "short", targets: []target{
				{expr: `sum by (stage) (increase(recording_storage_retries_total[15m]))`, legend: "{{stage}}"}}},
			{title: "File keys handed out", kind: "timeseries", width: 6, height: 8, unit: "short", targets: []target{
				{expr: `sum by (trigger, outcome) (increase(recording_storage_file_keys_total[15m]))`, legend: "{{trigger}} {{outcome}}"}}},
			{title: "Health per check", kind: "timeseries", width: 6, height: 8, unit: "short", targets: []target{
				{expr: `min by (check) (recording_storage_healthcheck_up)`, legend: "{{check}}"}}},
		}},
	}
}

// Dashboard returns the Grafana dashboard (JSON model) of dashboardRows,
// with a data source variable.
func Dashboard() ([]byte, error) {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []any
	id, y := 1, 0
	for _, r := range dashboardRows() {
		panels = append(panels, map[string]any{"id": id, "type": "row", "title": r.title, "collapsed": false,
			"gridPos": map[string]int{"x": 0, "y": y, "w": dashboardWidth, "h": 1}, "panels": []any{}})
		id++
		y++
		x, height := 0, 0
		for _, p := range r.panels {
			if x+p.width > dashboardWidth {
				return nil, fmt.Errorf("row %q is wider than %d columns", r.title, dashboardWidth)
			}
			var targets []any
			for i, t := range p.targets {
				targets = append(targets, map[string]any{"refId": string(rune('A' + i)), "datasource": ds,
					"expr": t.expr, "legendFormat": t.legend})
			}
			panels = append(panels, map[string]any{"id": id, "type": p.kind, "title": p.title, "datasource": ds,
				"gridPos":     map[string]int{"x": x, "y": y, "w": p.width, "h": p.height},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.unit}, "overrides": []any{}},
				"options":     map[string]any{}, "targets": targets})
			id++
			x += p.width
			height = max(height, p.height)
		}
		y += height
	}
	d := map[string]any{
		"title": "Recording Storage", "uid": "recording-storage", "tags": []string{"recording-storage"},
		"schemaVersion": 39, "version": 1, "editable": true, "refresh": "30s", "timezone": "",
		"time": map[string]string{"from": "now-6h", "to": "now"},
		"templating": map[string]any{"list": []any{map[string]any{"name": "datasource", "label": "Data source",
			"type": "datasource", "query": "prometheus", "current": map[string]any{}, "hide": 0}}},
		"panels": panels,
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// DashboardLayout draws the dashboard's layout in text: each row's title,
// then its panels as boxes as wide (four characters per grid column) and
// as high (a line per two grid rows) as they are, with their titles.
func DashboardLayout() string {
	const col = 4
	var b strings.Builder
	for _, r := range dashboardRows() {
		fmt.Fprintf(&b, "%s\n", r.title)
		var titles [][]string
		lines := 0
		for _, p := range r.panels {
			t := wrap(p.title, p.width*col-4)
			titles = append(titles, t)
			lines = max(lines, len(t), p.height/2) // two grid rows a line
		}
		var top, bottom strings.Builder
		for _, p := range r.panels {
			top.WriteString("┌" + strings.Repeat("─", p.width*col-2) + "┐")
			bottom.WriteString("└" + strings.Repeat("─", p.width*col-2) + "┘")
		}
		b.WriteString(top.String() + "\n")
		for l := range lines {
			for i, p := range r.panels {
				text := ""
				if l < len(titles[i]) {
					text = titles[i][l]
				}
				b.WriteString("│ " + text + strings.Repeat(" ", p.width*col-3-len([]rune(text))) + "│")
			}
			b.WriteString("\n")
		}
		b.WriteString(bottom.String() + "\n")
	}
	return b.String()
}

// wrap splits s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = w
		case len(line)+1+len(w) <= width:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	return append(lines, line)
}
