package deploy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/deploy"
)

// TestDashboard_file: deploy/grafana/recording-storage.json is what
// deploy.Dashboard writes; regenerate it with
//
//	RS_REGENERATE_DASHBOARD=1 go test -run TestDashboard_file ./deploy/
func TestDashboard_file(t *testing.T) {
	want, err := deploy.Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", deploy.DashboardFile)
	if os.Getenv("RS_REGENERATE_DASHBOARD") != "" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: RS_REGENERATE_DASHBOARD=1 go test -run TestDashboard_file ./deploy/", deploy.DashboardFile)
	}
}

// TestDashboard_panels: the panels do not overlap, each has a query on the
// data source variable, and the README shows the layout as it is.
func TestDashboard_panels(t *testing.T) {
	raw, err := deploy.Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Type    string                   `json:"type"`
			Title   string                   `json:"title"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	taken := map[[2]int]string{}
	for _, p := range d.Panels {
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := taken[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", p.Title, other, x, y)
				}
				taken[[2]int{x, y}] = p.Title
			}
		}
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q is beyond the dashboard's 24 columns", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %q on data source %q", p.Title, tg.Expr, tg.Datasource.UID)
			}
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), deploy.DashboardLayout()) {
		t.Errorf("README.md does not show the dashboard's layout as it is; it is:\n%s", deploy.DashboardLayout())
	}
}
