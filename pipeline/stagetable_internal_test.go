package pipeline

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/messages"
)

// TestStageTable_consumers: every consumer of the stage declaration
// (conf.StageTable) follows it for every stage: the router registers one
// handler per input with the stage's health check, the transport gives
// each input, the topology lists its queues, payloads and output, and a
// poisoned message of each payload is requeued to the input that reads it.
func TestStageTable_consumers(t *testing.T) {
	cfg := conf.Default()
	cfg.Stages.Transport = conf.TransportMemory
	log := logrus.New()
	log.SetOutput(io.Discard)
	svc, err := New(context.Background(), Options{Config: cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	topo := NewTopology(cfg)
	var checks []string
	for _, c := range svc.StageChecks() {
		checks = append(checks, c.Name)
	}
	s := cfg.Stages
	for _, d := range conf.StageTable() {
		t.Run(d.Name, func(t *testing.T) {
			if !slices.Contains(svc.Stages(), d.Name) || !slices.Contains(checks, d.Health()) {
				t.Errorf("service stages %v, checks %v: want %s with %s", svc.Stages(), checks, d.Name, d.Health())
			}
			if got := len(svc.handlers[d.Name]); got != len(d.Inputs) {
				t.Errorf("%d router handlers, want one per input (%d)", got, len(d.Inputs))
			}
			ins, err := svc.Transport().Input(d.Name)
			if err != nil || len(ins) != len(d.Inputs) {
				t.Errorf("Input = %v, %v; want %d inputs", ins, err, len(d.Inputs))
			}
			io, ok := topo.Stage(d.Name)
			if !ok || len(io.Queues) != len(d.Inputs) || len(io.Payloads) != len(d.Inputs) || io.Workers != d.Workers(s) || io.Health != d.Health() {
				t.Errorf("topology stage %+v", io)
			}
			if out := d.Output(s); out != "" && !slices.Contains(io.Publishes, out) {
				t.Errorf("topology: %s publishes %v, want %s among them", d.Name, io.Publishes, out)
			}
			for i, in := range d.Inputs {
				if in.Inbound {
					if q, _ := conf.InboundQueueName(s.Parse.Queue); io.Queues[i] != q || payloadStage("") != d.Name {
						t.Errorf("inbound input: queue %s, stage of an unlabelled message %s", io.Queues[i], payloadStage(""))
					}
					continue
				}
				if io.Queues[i] != conf.SubscriptionQueue(in.From(s), d.Name) {
					t.Errorf("topology queue %s, want %s", io.Queues[i], conf.SubscriptionQueue(in.From(s), d.Name))
				}
				label := messages.Label(in.Payload)
				topic, inbound, err := requeueTarget(s, label)
				if err != nil || inbound || topic != in.From(s) || payloadStage(label) != d.Name {
					t.Errorf("requeue of %s: %s, %v, %v, stage %s; want %s of %s", label, topic, inbound, err, payloadStage(label), in.From(s), d.Name)
				}
				if !slices.Contains(subscriptions(s), subscription{in.From(s), d.Name}) {
					t.Errorf("transport subscriptions lack %s for %s", in.From(s), d.Name)
				}
			}
		})
	}
}
