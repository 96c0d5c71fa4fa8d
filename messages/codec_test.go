package messages_test

import (
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
	if len(msg.Metadata) > messages.MaxMetadataKeys-5 {
		t.Errorf("%d metadata keys leave no room for the poison queue (4) and correlation id (1)", len(msg.Metadata))
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
