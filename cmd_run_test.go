package main

import (
	"strings"
	"testing"
)

// TestRunCommand_refuses_configurator_without_sweep: with instances from a
// configurator the sweep must be told which instances to sweep, or a file
// key a share step failed to hand out would never reach the room's members
// once the source is removed: run refuses to start, naming both settings.
func TestRunCommand_refuses_configurator_without_sweep(t *testing.T) {
	t.Setenv("RS_INSTANCES_SOURCE", "configurator")
	t.Setenv("RS_INSTANCES_CONFIGURATOR_URL", "https://configurator.example")
	t.Setenv("RS_SHARER_INSTANCES", "")
	code, _, errOut := run(t, "run", "--stages", "parse")
	if code != 1 || !strings.Contains(errOut, "sharer.instances") || !strings.Contains(errOut, "instances.source is configurator") {
		t.Fatalf("exit %d: %s; want 1 naming sharer.instances and instances.source", code, errOut)
	}
}
