package dracoon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

// maxMissingKeyPages stops DistributeMissingKeys on a server that keeps
// answering items it never accepts.
const maxMissingKeyPages = 10000

// keyCache holds the account's unlocked private keys by key pair version
// ("" is the preferred pair). Unlocking is serialized by sem.
type keyCache struct {
	sem chan struct{}

	mu   sync.Mutex
	keys map[string]*crypto.PrivateKey
}

// PrivateKey returns the account's preferred key pair, unlocked with
// Config.EncryptionPassword. It is fetched and unlocked once per Client.
func (c *Client) PrivateKey(ctx context.Context) (*crypto.PrivateKey, error) {
	return c.privateKey(ctx, "")
}

// privateKey returns the unlocked key pair of version ("" is the preferred
// one), fetching and unlocking it on first use.
func (c *Client) privateKey(ctx context.Context, version string) (*crypto.PrivateKey, error) {
	k := &c.keys
	k.mu.Lock()
	if pk, ok := k.keys[version]; ok {
		k.mu.Unlock()
		return pk, nil
	}
	k.mu.Unlock()
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-k.sem }()
	k.mu.Lock()
	if pk, ok := k.keys[version]; ok {
		k.mu.Unlock()
		return pk, nil
	}
	k.mu.Unlock()

	kp, err := c.KeyPair(ctx, version)
	if err != nil {
		return nil, err
	}
	pk, err := crypto.Unlock(kp.PrivateKeyContainer, c.cfg.EncryptionPassword.Reveal())
	if err != nil {
		return nil, fmt.Errorf("cannot unlock private key: %w", err)
	}
	if err := pk.CheckPair(kp.PublicKeyContainer); err != nil {
		return nil, fmt.Errorf("cannot use key pair: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]*crypto.PrivateKey{}
	}
	k.keys[version] = pk
	k.keys[pk.Version()] = pk
	return pk, nil
}

// privateKeyForFileKey returns the unlocked key pair that can unwrap a file
// key of fileKeyVersion.
func (c *Client) privateKeyForFileKey(ctx context.Context, fileKeyVersion string) (*crypto.PrivateKey, error) {
	version := crypto.KeyPairVersionRSA4096
	if fileKeyVersion == crypto.FileKeyVersionA {
		version = crypto.KeyPairVersionA
	}
	return c.privateKey(ctx, version)
}

// KeyPair returns the account's key pair container of version (empty: the
// preferred one), still locked. An account without one gives an error
// wrapping ErrNoKeyPair.
func (c *Client) KeyPair(ctx context.Context, version string) (crypto.UserKeyPairContainer, error) {
	var q url.Values
	if version != "" {
		q = url.Values{"version": {version}}
	}
	var kp crypto.UserKeyPairContainer
	err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/user/account/keypair", query: q, idempotent: true}, &kp)
	if IsStatus(err, http.StatusNotFound) {
		return kp, fmt.Errorf("cannot get key pair %q: %w: %w", version, ErrNoKeyPair, err)
	}
	if err != nil {
		return kp, fmt.Errorf("cannot get key pair: %w", err)
	}
	return kp, nil
}

// KeyScope selects the files whose missing keys DistributeMissingKeys serves:
// set exactly one of FileID and RoomID.
type KeyScope struct {
	FileID int64 // one file
	RoomID int64 // every file in a room
}

// KeyStats counts the outcome of DistributeMissingKeys, in (user, file) pairs.
type KeyStats struct {
	Set     int // keys stored for a user
	Skipped int // pairs this account cannot serve (no usable key of its own, unusable public key)
	Failed  int // pairs whose key could not be wrapped or stored
}

// pair is one (user, file) item of missingFileKeys.
type pair struct{ user, file int64 }

// DistributeMissingKeys gives every user that lacks the file key of a file
// in scope a copy wrapped for each of the user's public keys. It pages
// through GET /v4/nodes/missingFileKeys from offset 0 until no items are
// left, unwraps each file key once and stores keys in batches. Pairs it
// cannot serve are counted and stepped over, so it always ends. The error is
// non-nil only when the missing keys cannot be listed.
func (c *Client) DistributeMissingKeys(ctx context.Context, scope KeyScope) (KeyStats, error) {
	var st KeyStats
	q := url.Values{"limit": {strconv.Itoa(maxMissingKeysLimit)}}
	switch {
	case scope.FileID > 0 && scope.RoomID == 0:
		q.Set("file_id", strconv.FormatInt(scope.FileID, 10))
	case scope.RoomID > 0 && scope.FileID == 0:
		q.Set("room_id", strconv.FormatInt(scope.RoomID, 10))
	default:
		return st, errors.New("cannot distribute missing keys: set exactly one of FileID and RoomID")
	}
	plain := map[int64]*crypto.PlainFileKey{} // nil value: this account cannot unwrap
	pubs := map[string]*crypto.PublicKey{}    // by version and PEM
	done := map[pair]bool{}                   // pairs already counted as skipped or failed
	var offset int64
	for page := 0; page < maxMissingKeyPages; page++ {
		q.Set("offset", strconv.FormatInt(offset, 10))
		var mk missingKeysResponse
		if err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes/missingFileKeys", query: q, idempotent: true}, &mk); err != nil {
			return st, fmt.Errorf("cannot list missing file keys: %w", err)
		}
		if len(mk.Items) == 0 {
			return st, nil
		}
		fileKeys := map[int64][]crypto.FileKey{}
		for _, f := range mk.Files {
			fileKeys[f.ID] = append(fileKeys[f.ID], f.FileKeyContainer)
		}
		userKeys := map[int64][]crypto.PublicKeyContainer{}
		for _, u := range mk.Users {
			userKeys[u.ID] = append(userKeys[u.ID], u.PublicKeyContainer)
		}
		var batch []userFileKeySetRequest
		var batchPairs []pair
		unserved := 0 // items of this page that stay in the list
		for _, it := range mk.Items {
			p := pair{it.UserID, it.FileID}
			pk := c.plainKeyFor(ctx, plain, it.FileID, fileKeys[it.FileID])
			pubList := userKeys[it.UserID]
			if pk == nil || len(pubList) == 0 {
				unserved++
				if !done[p] {
					done[p] = true
					st.Skipped++
				}
				continue
			}
			wrapped := 0
			for _, pc := range pubList {
				pub, err := publicKey(pubs, pc)
				if err != nil {
					continue
				}
				fk, err := pub.WrapFileKey(*pk)
				if err != nil {
					continue
				}
				batch = append(batch, userFileKeySetRequest{FileID: it.FileID, UserID: it.UserID, FileKey: fk})
				wrapped++
			}
			if wrapped == 0 {
				unserved++
				if !done[p] {
					done[p] = true
					st.Skipped++
				}
				continue
			}
			batchPairs = append(batchPairs, p)
		}
		if len(batch) > 0 {
			err := c.call(ctx, &request{method: http.MethodPost, path: "/v4/nodes/files/keys",
				body: userFileKeySetBatchRequest{Items: batch}, ok: []int{http.StatusNoContent}, idempotent: true}, nil)
			switch {
			case err == nil:
				st.Set += len(batchPairs)
			case ctx.Err() != nil:
				return st, ctx.Err()
			default:
				c.log.WithError(err).WithField("items", len(batch)).Warn("dracoon cannot set file keys")
				for _, p := range batchPairs {
					if !done[p] {
						done[p] = true
						st.Failed++
					}
				}
				unserved += len(batchPairs)
			}
		}
		// Served items disappear from the list; the unserved stay in front.
		offset += int64(unserved)
	}
	return st, fmt.Errorf("cannot finish distributing missing file keys after %d pages", maxMissingKeyPages)
}

// plainKeyFor unwraps the file key of file once and caches it (nil when this
// account holds no usable key for it).
func (c *Client) plainKeyFor(ctx context.Context, cache map[int64]*crypto.PlainFileKey, file int64, keys []crypto.FileKey) *crypto.PlainFileKey {
	if pk, ok := cache[file]; ok {
		return pk
	}
	var out *crypto.PlainFileKey
	for _, fk := range keys {
		priv, err := c.privateKeyForFileKey(ctx, fk.Version)
		if err != nil {
			continue
		}
		k, err := priv.UnwrapFileKey(fk)
		if err != nil {
			c.log.WithFields(logrus.Fields{"file_id": file, "version": fk.Version}).WithError(err).Warn("dracoon cannot unwrap file key")
			continue
		}
		out = &k
		break
	}
	cache[file] = out
	return out
}

// publicKey parses a public key container once.
func publicKey(cache map[string]*crypto.PublicKey, pc crypto.PublicKeyContainer) (*crypto.PublicKey, error) {
	id := pc.Version + "\x00" + pc.PublicKey
	if p, ok := cache[id]; ok {
		if p == nil {
			return nil, crypto.ErrBadVersion
		}
		return p, nil
	}
	p, err := crypto.ParsePublicKey(pc)
	if err != nil {
		cache[id] = nil
		return nil, err
	}
	cache[id] = p
	return p, nil
}

// UserFileKey returns the account's own encrypted key of a file.
func (c *Client) UserFileKey(ctx context.Context, fileID int64) (crypto.FileKey, error) {
	var fk crypto.FileKey
	err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes/files/" + strconv.FormatInt(fileID, 10) + "/user_file_key",
		route: "GET /v4/nodes/files/{file_id}/user_file_key", idempotent: true}, &fk)
	if err != nil {
		return fk, fmt.Errorf("cannot get file key of file %d: %w", fileID, err)
	}
	return fk, nil
}

// PlainFileKey returns the decrypted key of a file, unwrapped with the
// account's key pair of the matching version.
func (c *Client) PlainFileKey(ctx context.Context, fileID int64) (crypto.PlainFileKey, error) {
	fk, err := c.UserFileKey(ctx, fileID)
	if err != nil {
		return crypto.PlainFileKey{}, err
	}
	priv, err := c.privateKeyForFileKey(ctx, fk.Version)
	if err != nil {
		return crypto.PlainFileKey{}, err
	}
	pk, err := priv.UnwrapFileKey(fk)
	if err != nil {
		return crypto.PlainFileKey{}, fmt.Errorf("cannot unwrap file key of file %d: %w", fileID, err)
	}
	return pk, nil
}
