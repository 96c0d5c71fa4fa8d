// Package logging sets up the service's structured logrus log and holds the
// description codes that the original service put on log entries, so that
// existing alerting keeps working.
package logging

import (
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/recording-storage/recording-storage/conf"
)

// Code is a description code: the field "code" on every entry of note.
type Code int

// Description codes of Recording Storage (15000-15999), as in the original service.
const (
	CodeStart              Code = 15000 // info: application start
	CodeCLIStart           Code = 15001 // info: CLI command start
	CodeConfigLoad         Code = 15002 // alert: configuration cannot be loaded
	CodeAWSSession         Code = 15003 // critical: AWS session error
	CodeAWSConfig          Code = 15004 // critical: AWS configuration error
	CodeSQS                Code = 15005 // error: SQS/SNS error
	CodeTransferStatus     Code = 15006 // info: transfer status
	CodeTransferError      Code = 15007 // error: transfer error
	CodeProfiling          Code = 15008 // info: worker profiling (durations, throughput)
	CodeS3ToDracoon        Code = 15009 // error: S3-to-DRACOON error
	CodeRESTClient         Code = 15010 // error: REST client (DRACOON, configurator) error
	CodeStorageError       Code = 15011 // error: storage error
	CodeStorageStatus      Code = 15012 // info: storage status
	CodeInstanceJob        Code = 15013 // error: instance job runner error
	CodeHealthcheck        Code = 15014 // error: health check error
	CodeWorker             Code = 15015 // error: worker error
	CodeSharerError        Code = 15016 // error: global sharer error
	CodeSharerStatus       Code = 15017 // info: global sharer status
	CodeConfigurationError Code = 15018 // error: configuration error
)

// Field names used on log entries.
const (
	FieldCode      = "code"
	FieldJobID     = "job_id"
	FieldMeetingID = "meeting_id"
	FieldStage     = "stage"
	FieldInstance  = "instance"
)

// New returns a logger writing to w as c says: JSON, text, or auto (text when
// w is a terminal, JSON otherwise).
func New(c conf.Logger, w io.Writer) (*logrus.Logger, error) {
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	log := logrus.New()
	log.SetOutput(w)
	log.SetLevel(level)
	text := c.Format == "text"
	if c.Format == "auto" {
		f, ok := w.(*os.File)
		text = ok && term.IsTerminal(int(f.Fd()))
	}
	if text {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	} else {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	return log, nil
}

// WithCode returns an entry carrying a description code.
func WithCode(l logrus.FieldLogger, code Code) *logrus.Entry {
	return l.WithField(FieldCode, int(code))
}
