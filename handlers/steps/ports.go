package steps

import (
	"context"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// Instances gives the configuration of an instance domain
// (implemented by the configurator package).
type Instances interface {
	Instance(ctx context.Context, domain string) (conf.Instance, error)
}

// Objects reads, looks up and removes source objects (implemented by
// *s3source.Source). Head's error for a missing object matches
// fs.ErrNotExist.
type Objects interface {
	transfer.Source
	Head(ctx context.Context, bucket, key string) (s3source.Object, error)
}

// Accounts gives the DRACOON account of an instance's configuration, the
// same one for every job of the instance (implemented with
// *dracoon.Pool; see infra/setup).
type Accounts interface {
	Account(acct conf.DracoonAccount) (Account, error)
}

// Account is an instance's DRACOON account as the steps use it
// (implemented with *dracoon.Client: see infra/setup).
type Account interface {
	Rooms
	Keys
	// Dracoon is what the transfer engine uploads with.
	transfer.Dracoon
	// Account returns the account's user, logging in if needed.
	Account(ctx context.Context) (dracoon.UserAccount, error)
	// Node returns the node id.
	Node(ctx context.Context, id int64) (dracoon.Node, error)
}

// Rooms finds and creates the target rooms below an instance's parent room.
type Rooms interface {
	// LookupRoomPath finds the room at path below the parent room without
	// creating anything.
	LookupRoomPath(ctx context.Context, parentRoomID int64, path string) (dracoon.Node, bool, error)
	// EnsureRoomPath finds or creates the room at path below the parent
	// room.
	EnsureRoomPath(ctx context.Context, parentRoomID int64, path string) (dracoon.Node, error)
}

// Keys hands out the file keys room members lack.
type Keys interface {
	// PrivateKey returns the account's key pair, unlocked.
	PrivateKey(ctx context.Context) (*crypto.PrivateKey, error)
	// DistributeMissingKeys hands the keys of the files in scopes to every
	// user who lacks them.
	DistributeMissingKeys(ctx context.Context, scopes ...dracoon.KeyScope) (messages.KeyStats, error)
}
