package pipeline

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/sirupsen/logrus"
)

// watermillLogger lets Watermill log through logrus, so that routers,
// publishers and subscribers write the same structured log as the service.
type watermillLogger struct {
	entry *logrus.Entry
}

// NewWatermillLogger adapts log to Watermill's LoggerAdapter.
func NewWatermillLogger(log logrus.FieldLogger) watermill.LoggerAdapter {
	return watermillLogger{entry: log.WithFields(nil)}
}

func (l watermillLogger) Error(msg string, err error, fields watermill.LogFields) {
	l.entry.WithFields(logrus.Fields(fields)).WithError(err).Error(msg)
}

func (l watermillLogger) Info(msg string, fields watermill.LogFields) {
	l.entry.WithFields(logrus.Fields(fields)).Info(msg)
}

func (l watermillLogger) Debug(msg string, fields watermill.LogFields) {
	l.entry.WithFields(logrus.Fields(fields)).Debug(msg)
}

func (l watermillLogger) Trace(msg string, fields watermill.LogFields) {
	l.entry.WithFields(logrus.Fields(fields)).Trace(msg)
}

func (l watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return watermillLogger{entry: l.entry.WithFields(logrus.Fields(fields))}
}
