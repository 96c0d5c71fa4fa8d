package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/pipeline"
)

// TestTopologyCommand: the JSON lists every topic, queue and subscription
// of the default configuration, and each stage's queues and topics.
func TestTopologyCommand(t *testing.T) {
	code, out, errOut := run(t, "topology", "--json")
	if code != 0 {
		t.Fatalf("topology exited %d: %s", code, errOut)
	}
	var topo pipeline.Topology
	if err := json.Unmarshal([]byte(out), &topo); err != nil {
		t.Fatal(err)
	}
	var queues []string
	for _, q := range topo.Queues {
		queues = append(queues, q.Name)
		a := q.Attributes
		switch {
		case a["MessageRetentionPeriod"] != "1209600":
			t.Errorf("queue %s: attributes %v, want MessageRetentionPeriod 1209600 (14 days)", q.Name, a)
		case q.Name == "recording-poison-dlq":
			if len(a) != 1 {
				t.Errorf("dead-letter queue: attributes %v, want only the retention", a)
			}
		case a["VisibilityTimeout"] != "900":
			t.Errorf("queue %s: attributes %v, want VisibilityTimeout 900 (15m)", q.Name, a)
		case (a["RedrivePolicy"] == "") != (q.Name == "recording-poison-inspect"):
			t.Errorf("queue %s: redrive policy %q; every queue a stage reads has one, the poison topic's none", q.Name, a["RedrivePolicy"])
		case q.Name != "recording-poison-inspect" && !strings.Contains(a["RedrivePolicy"], `"maxReceiveCount":"120"`):
			t.Errorf("queue %s: redrive policy %q, want 120 receives", q.Name, a["RedrivePolicy"])
		}
	}
	want := []string{"recording-jobs", "recording-poison-dlq", "recording-parsed-resolve", "recording-resolved-rooms", "recording-rooms-ready-transfer",
		"recording-share-share", "recording-transferred-share", "recording-poison-inspect"}
	if !slices.Equal(queues, want) {
		t.Errorf("queues %v, want %v", queues, want)
	}
	if len(topo.Subscriptions) != len(want)-2 || len(topo.Topics) != 6 {
		t.Errorf("%d subscriptions and %d topics, want %d and 6", len(topo.Subscriptions), len(topo.Topics), len(want)-2)
	}
	share, _ := topo.Stage("share")
	if !slices.Equal(share.Queues, []string{"recording-share-share", "recording-transferred-share"}) {
		t.Errorf("share reads %v", share.Queues)
	}
	if code, out, _ := run(t, "topology"); code != 0 || !strings.Contains(out, "recording-rooms-ready-transfer") {
		t.Errorf("topology (table) exited %d: %s", code, out)
	}
}

// TestIAMPolicyCommand: each stage set gets SQS and SNS on exactly its
// queues and topics, S3 as far as it needs it, and the creation of
// resources only with stages.create_resources true.
func TestIAMPolicyCommand(t *testing.T) {
	const arn = "arn:aws:%s:eu-central-1:123456789012:"
	sqs, sns := strings.Replace(arn, "%s", "sqs", 1), strings.Replace(arn, "%s", "sns", 1)
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     map[string][]string // Sid: resources
	}{
		{name: "parse_no_s3", args: []string{"--stages", "parse"}, env: map[string]string{"RS_STAGES_CREATE_RESOURCES": "false"},
			want: map[string][]string{
				"ReadQueues":    {sqs + "recording-jobs"},
				"LookUpTopics":  {sns + "recording-parsed", sns + "recording-poison"},
				"PublishTopics": {sns + "recording-parsed", sns + "recording-poison"},
			}},
		{name: "transfer_keeping_sources", args: []string{"--stages", "transfer", "--bucket", "rec"},
			env: map[string]string{"RS_STAGES_CREATE_RESOURCES": "false", "RS_S3_REMOVE_AFTER_TRANSFER": "false"},
			want: map[string][]string{
				"ReadQueues":           {sqs + "recording-rooms-ready-transfer"},
				"LookUpTopics":         {sns + "recording-poison", sns + "recording-rooms-ready", sns + "recording-transferred"},
				"PublishTopics":        {sns + "recording-poison", sns + "recording-transferred"},
				"ReadRecordings":       {"arn:aws:s3:::rec/*"},
				"ListRecordingBuckets": {"arn:aws:s3:::rec"},
			}},
		{name: "sweep_creating_resources", args: []string{"--stages", "sweep"},
			want: map[string][]string{
				"LookUpTopics":  {sns + "recording-share"},
				"PublishTopics": {sns + "recording-share"},
				"CreateQueues": {sqs + "recording-jobs", sqs + "recording-parsed-resolve", sqs + "recording-poison-inspect", sqs + "recording-poison-dlq",
					sqs + "recording-resolved-rooms", sqs + "recording-rooms-ready-transfer", sqs + "recording-share-share",
					sqs + "recording-transferred-share"},
				"CreateTopics": {sns + "recording-parsed", sns + "recording-poison", sns + "recording-resolved",
					sns + "recording-rooms-ready", sns + "recording-share", sns + "recording-transferred"},
			}},
		{name: "no_stages", args: nil, wantCode: 2},
		{name: "unknown_stage", args: []string{"--stages", "parse,upload"}, wantCode: 2},
		{name: "no_account_id", args: []string{"--stages", "parse"}, env: map[string]string{"RS_AWS_ACCOUNT_ID": ""}, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RS_AWS_ACCOUNT_ID", "123456789012")
			t.Setenv("RS_AWS_REGION", "eu-central-1")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, out, errOut := run(t, append([]string{"iam-policy"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("iam-policy exited %d, want %d: %s", code, tt.wantCode, errOut)
			}
			if code != 0 {
				return
			}
			var p pipeline.IAMPolicy
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, st := range p.Statement {
				if st.Effect != "Allow" || slices.Contains(st.Resource, "*") {
					t.Errorf("statement %s: effect %s on %v", st.Sid, st.Effect, st.Resource)
				}
				got[st.Sid] = st.Resource
			}
			for sid, res := range tt.want {
				slices.Sort(res)
				if !slices.Equal(got[sid], res) {
					t.Errorf("%s: resources %v, want %v", sid, got[sid], res)
				}
			}
			for sid := range got {
				if _, ok := tt.want[sid]; !ok {
					t.Errorf("unexpected statement %s on %v", sid, got[sid])
				}
			}
		})
	}
}

// TestTopologyCommand_README: the README shows what `topology` prints for
// the defaults (with the account 123456789012).
func TestTopologyCommand_README(t *testing.T) {
	for _, k := range []string{"RS_STAGES_PARSE_QUEUE", "RS_STAGES_RESOLVE_TOPIC", "RS_STAGES_ROOMS_TOPIC", "RS_STAGES_TRANSFER_TOPIC",
		"RS_STAGES_SHARE_TOPIC", "RS_STAGES_TRANSFERRED", "RS_STAGES_POISON", "RS_STAGES_VISIBILITY_TIMEOUT"} {
		t.Setenv(k, "") // set, then unset: the defaults, whatever the environment says
		os.Unsetenv(k)
	}
	// The README's account and region, which the dead-letter queue's ARN names.
	t.Setenv("RS_AWS_ACCOUNT_ID", "123456789012")
	t.Setenv("RS_AWS_REGION", "us-east-1")
	code, out, errOut := run(t, "topology")
	if code != 0 {
		t.Fatalf("topology exited %d: %s", code, errOut)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```\n"+out+"```\n") {
		t.Errorf("README.md does not show what `recording-storage topology` prints:\n%s", out)
	}
}
