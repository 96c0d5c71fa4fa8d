package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

func TestCodec_round_trip_and_checks(t *testing.T) {
	t.Parallel()
	in := messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: "i.example", FileIDs: []int64{1, 2}}
	msg, err := messages.New(in, "job-1", 42)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Metadata.Get(messages.MetaPayload); got != "share-request/1" {
		t.Errorf("payload metadata = %q", got)
	}
	// Only the job's keys: the poison queue and the correlation id add
	// theirs within the publishers' limit (pipeline.MaxMetadataKeys).
	if len(msg.Metadata) != 3 {
		t.Errorf("metadata %v, want job_id, meeting_id and payload only", msg.Metadata)
	}
	out, err := messages.Decode[messages.ShareRequest](msg)
	if err != nil || out.Instance != in.Instance || len(out.FileIDs) != 2 {
		t.Fatalf("Decode = %+v, %v", out, err)
	}

	_, err = messages.Decode[messages.Transferred](msg)
	if !errors.Is(err, messages.ErrWrongPayload) || !errclass.IsPermanent(err) {
		t.Fatalf("Decode of the wrong type: %v, want a permanent ErrWrongPayload", err)
	}

	garbled := message.NewMessage("x", []byte("{"))
	garbled.Metadata.Set(messages.MetaPayload, "share-request/1")
	if _, err := messages.Decode[messages.ShareRequest](garbled); !errclass.IsPermanent(err) {
		t.Fatalf("Decode of a garbled payload: %v, want a permanent error", err)
	}

	huge := messages.ShareRequest{Version: 1, Instance: strings.Repeat("x", messages.MaxPayloadSize)}
	if _, err := messages.New(huge, "", 0); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("New of an oversized payload: %v", err)
	}
}

// v2Payload is a payload at version 2 whose version 1 named its field
// otherwise, so that it upgrades.
type v2Payload struct {
	Rooms []int64 `json:"rooms"`
}

func (v2Payload) PayloadType() (string, int) { return "test-payload", 2 }

func (p *v2Payload) Upgrade(from int, data []byte) error {
	var v1 struct {
		Room int64 `json:"room"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return err
	}
	p.Rooms = []int64{v1.Room}
	return nil
}

// v2Additive is a payload at version 2 that only added a field to version 1.
type v2Additive struct {
	Room int64  `json:"room"`
	Note string `json:"note,omitempty"`
}

func (v2Additive) PayloadType() (string, int) { return "test-additive", 2 }

// TestDecode_versions: during a rolling deployment a reader takes the
// current and the previous version of its payload; an older one is
// refused for good, a newer one is left for a newer release (transient).
func TestDecode_versions(t *testing.T) {
	t.Parallel()
	msg := func(label, body string) *message.Message {
		m := message.NewMessage("x", []byte(body))
		m.Metadata.Set(messages.MetaPayload, label)
		return m
	}
	if got, err := messages.Decode[v2Payload](msg("test-payload/1", `{"room":7}`)); err != nil || len(got.Rooms) != 1 || got.Rooms[0] != 7 {
		t.Errorf("previous version, upgraded: %+v, %v", got, err)
	}
	if got, err := messages.Decode[v2Payload](msg("test-payload/2", `{"rooms":[8,9]}`)); err != nil || len(got.Rooms) != 2 {
		t.Errorf("current version: %+v, %v", got, err)
	}
	if got, err := messages.Decode[v2Additive](msg("test-additive/1", `{"room":7}`)); err != nil || got.Room != 7 {
		t.Errorf("previous version, additive: %+v, %v", got, err)
	}
	tests := []struct {
		label string
		want  error
		class errclass.Class
	}{
		{"test-payload/3", messages.ErrNewerPayload, errclass.Transient},
		{"test-payload/0", messages.ErrWrongPayload, errclass.Permanent},
		{"test-payload", messages.ErrWrongPayload, errclass.Permanent},
		{"test-payload/x", messages.ErrWrongPayload, errclass.Permanent},
		{"other/2", messages.ErrWrongPayload, errclass.Permanent},
	}
	for _, tt := range tests {
		_, err := messages.Decode[v2Payload](msg(tt.label, `{}`))
		if !errors.Is(err, tt.want) || errclass.Of(err) != tt.class {
			t.Errorf("%s: %v (%v), want %v (%v)", tt.label, err, errclass.Of(err), tt.want, tt.class)
		}
	}
	if _, err := messages.Decode[v2Payload](msg("test-payload/1", `{"room":"seven"}`)); !errclass.IsPermanent(err) {
		t.Errorf("a previous version that does not upgrade: %v, want permanent", err)
	}
}
