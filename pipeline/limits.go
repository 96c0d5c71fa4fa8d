package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// Limits of SQS and SNS on one message. goaws enforces none of them but the
// body size, so the publishers check them for every transport.
const (
	// MaxMessageSize is the most bytes of one message: the body plus, for each
	// attribute, its name, data type and value.
	MaxMessageSize = 256 << 10
	// MaxMetadataKeys is the most metadata keys of one message: SQS and SNS
	// carry 10 attributes and Watermill's UUID takes one.
	MaxMetadataKeys = 9
	// maxAttributeName is the longest attribute name SQS accepts.
	maxAttributeName = 256
	// attributeType is the data type of every attribute the publishers write.
	attributeType = "String"
)

// ErrMessageLimits reports a message that SQS or SNS would refuse: too big,
// too many metadata keys, an empty body or UUID, a bad attribute name or a
// character outside the ones SQS allows. It is permanent.
var ErrMessageLimits = errclass.New(errclass.Permanent, "message beyond the SQS and SNS limits")

// limitPublisher checks every message against the SQS and SNS limits before
// anything is sent, and sends copies without empty metadata values and
// without delivery metadata.
type limitPublisher struct {
	next message.Publisher
}

// Publish sends msgs to topic, or none of them if one breaks a limit.
func (p limitPublisher) Publish(topic string, msgs ...*message.Message) error {
	out := make([]*message.Message, len(msgs))
	for i, msg := range msgs {
		o, err := outgoing(msg)
		if err != nil {
			return fmt.Errorf("cannot publish message %s to %s: %w", msg.UUID, topic, err)
		}
		out[i] = o
	}
	return p.next.Publish(topic, out...)
}

// Close closes the publisher.
func (p limitPublisher) Close() error { return p.next.Close() }

// outgoing returns the copy of msg to send, or an error wrapping
// ErrMessageLimits.
func outgoing(msg *message.Message) (*message.Message, error) {
	md := make(message.Metadata, len(msg.Metadata))
	for k, v := range msg.Metadata {
		switch {
		case v == "": // SQS refuses empty values; Metadata.Get reads them as absent anyway
		case deliveryKey(k):
		default:
			md[k] = v
		}
	}
	if len(md) > MaxMetadataKeys {
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		return nil, fmt.Errorf("%w: %d metadata keys (%s), SQS and SNS carry at most %d besides the UUID",
			ErrMessageLimits, len(md), strings.Join(keys, ", "), MaxMetadataKeys)
	}
	if msg.UUID == "" {
		return nil, fmt.Errorf("%w: empty UUID", ErrMessageLimits)
	}
	if len(msg.Payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload, SQS and SNS need at least one character", ErrMessageLimits)
	}
	if !validText(string(msg.Payload)) {
		return nil, fmt.Errorf("%w: the payload is not UTF-8 text of the characters SQS allows", ErrMessageLimits)
	}
	for k, v := range md {
		if err := checkAttributeName(k); err != nil {
			return nil, err
		}
		if !validText(v) {
			return nil, fmt.Errorf("%w: the value of metadata %q is not UTF-8 text of the characters SQS allows", ErrMessageLimits, k)
		}
	}
	if size := messageSize(msg.UUID, msg.Payload, md); size > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes with metadata, more than %d", ErrMessageLimits, size, MaxMessageSize)
	}
	out := message.NewMessage(msg.UUID, msg.Payload)
	out.Metadata = md
	out.SetContext(msg.Context())
	return out, nil
}

// messageSize is the size SQS and SNS count for a message of this UUID,
// body and metadata: the body plus, for each attribute (the UUID's too),
// its name, data type and value.
func messageSize(uuid string, payload []byte, md message.Metadata) int {
	size := len(payload) + len(sqs.UUIDAttribute) + len(attributeType) + len(uuid)
	for k, v := range md {
		if v != "" {
			size += len(k) + len(attributeType) + len(v)
		}
	}
	return size
}

// maxFittedValue is the most bytes fit keeps of a metadata value when the
// message does not fit.
const maxFittedValue = 1 << 10

// fit makes msg fit the SQS and SNS limits, so that it can always be sent:
// characters SQS refuses become U+FFFD; when it is too big, every metadata
// value but those of keep is cut to maxFittedValue bytes, and then the
// body is cut to what fits, with the body's whole size and SHA-256 recorded
// in metadata cutKey. It reports whether it changed the body.
func fit(msg *message.Message, cutKey string, keep ...string) bool {
	for k, v := range msg.Metadata {
		if !validText(v) {
			msg.Metadata[k] = toValidText(v)
		}
	}
	whole := msg.Payload
	body := whole
	if !validText(string(body)) {
		body = []byte(toValidText(string(body)))
	}
	if messageSize(msg.UUID, body, msg.Metadata) > MaxMessageSize {
		for k, v := range msg.Metadata {
			if len(v) > maxFittedValue && !slices.Contains(keep, k) {
				msg.Metadata[k] = truncate(v, maxFittedValue)
			}
		}
	}
	if over := messageSize(msg.UUID, body, msg.Metadata) - MaxMessageSize; over > 0 {
		sum := sha256.Sum256(whole)
		note := fmt.Sprintf("cut from %d bytes, sha256 %s", len(whole), hex.EncodeToString(sum[:]))
		over += len(cutKey) + len(attributeType) + len(note) + len(" to 000000")
		cut := max(len(body)-over, 0)
		for cut > 0 && !utf8.RuneStart(body[cut]) {
			cut--
		}
		body = body[:cut]
		if len(body) == 0 {
			body = []byte("-") // SQS needs one character
		}
		msg.Metadata.Set(cutKey, fmt.Sprintf("%s to %d", note, len(body)))
	}
	changed := !bytes.Equal(body, whole)
	msg.Payload = body
	return changed
}

// toValidText replaces what validText refuses by U+FFFD.
func toValidText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// checkAttributeName checks a metadata key against the SQS rules for
// attribute names.
func checkAttributeName(name string) error {
	bad := len(name) > maxAttributeName || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..")
	lower := strings.ToLower(name)
	bad = bad || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.")
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%w: metadata key %q is not an SQS attribute name (up to %d letters, digits, '_', '-' or '.', "+
			"no leading, trailing or double '.', no AWS. or Amazon. prefix)", ErrMessageLimits, name, maxAttributeName)
	}
	return nil
}

// validText reports whether s is UTF-8 of only the characters SQS accepts in
// bodies and attribute values: tab, line feed, carriage return and U+0020 on,
// without U+FFFE and U+FFFF.
func validText(s string) bool {
	if !utf8.ValidString(s) { // also excludes surrogates
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}
