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
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// maxMissingKeyPages stops DistributeMissingKeys on a server that keeps
// answering items it never accepts, or full pages for ever: 1,000 pages
// of 100 pairs, 100,000 (user, file) pairs in one run, then an error
// wrapping ErrListingEndless (a sweep that stops there is done with; the
// next one lists what is still missing).
const maxMissingKeyPages = 1000

// keyCache holds the account's unlocked private keys by key pair version
// ("" is the preferred pair). Unlocking is serialized by sem.
type keyCache struct {
	sem chan struct{}

	mu   sync.Mutex
	keys map[string]*crypto.PrivateKey
	errs map[string]error // permanent failures (wrong encryption password): not tried again
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
	if pk, err, ok := k.cached(version); ok {
		return pk, err
	}
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-k.sem }()
	if pk, err, ok := k.cached(version); ok {
		return pk, err
	}

	kp, err := c.KeyPair(ctx, version)
	if err != nil {
		return nil, k.remember(err, version)
	}
	actual := kp.PrivateKeyContainer.Version
	pk, err := crypto.Unlock(kp.PrivateKeyContainer, c.cfg.EncryptionPassword.Reveal())
	if err != nil {
		return nil, k.remember(fmt.Errorf("cannot unlock private key %q of %s: %w", actual, c.cfg.Login, err), version, actual)
	}
	if err := pk.CheckPair(kp.PublicKeyContainer); err != nil {
		return nil, k.remember(fmt.Errorf("cannot use key pair %q: %w", actual, err), version, actual)
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

// cached returns the unlocked key of version, or the permanent error its
// unlocking met, and whether either is known.
func (k *keyCache) cached(version string) (*crypto.PrivateKey, error, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pk, ok := k.keys[version]; ok {
		return pk, nil, true
	}
	if err, ok := k.errs[version]; ok {
		return nil, err, true
	}
	return nil, nil, false
}

// remember keeps err for each of versions when it is permanent (a wrong
// encryption password, a missing or broken key pair), so that a key pair is
// unlocked once per Client, not once per file; and returns it.
func (k *keyCache) remember(err error, versions ...string) error {
	if !errclass.IsPermanent(err) {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.errs == nil {
		k.errs = map[string]error{}
	}
	for _, v := range versions {
		k.errs[v] = err
	}
	return err
}

// privateKeyForFileKey returns the unlocked key pair that can unwrap a file
// key of fileKeyVersion.
func (c *Client) privateKeyForFileKey(ctx context.Context, fileKeyVersion string) (*crypto.PrivateKey, error) {
	version := crypto.KeyPairVersionRSA4096
	if fileKeyVersion == crypto.FileKeyVersionA {
		version = crypto.KeyPairVersionA
	}
	// The preferred pair is the one most often needed: fetch it first, so
	// that an account with one pair fetches (and unlocks) it once.
	pk, err := c.privateKey(ctx, "")
	switch {
	case err == nil && pk.Version() == version:
		return pk, nil
	case err != nil && !errors.Is(err, ErrNoKeyPair):
		return nil, err
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
// set exactly one of FileID, RoomID and Account.
type KeyScope struct {
	FileID int64 // one file
	RoomID int64 // every file in a room
	// Account: every file of the account's rooms for which it holds a key
	// (GET /v4/nodes/missingFileKeys without a room or file).
	Account bool
}

// query returns the listing's parameters for the scope.
func (sc KeyScope) query() (url.Values, error) {
	q := url.Values{}
	switch {
	case sc.FileID > 0 && sc.RoomID == 0 && !sc.Account:
		q.Set("file_id", strconv.FormatInt(sc.FileID, 10))
	case sc.RoomID > 0 && sc.FileID == 0 && !sc.Account:
		q.Set("room_id", strconv.FormatInt(sc.RoomID, 10))
	case sc.Account && sc.FileID == 0 && sc.RoomID == 0:
	default:
		return nil, errclass.AsPermanent(errors.New("cannot distribute missing keys: set exactly one of FileID, RoomID and Account"))
	}
	return q, nil
}

// pair is one (user, file) item of missingFileKeys.
type pair struct{ user, file int64 }

// keyItem is one wrapped key to store, for the pair it serves.
type keyItem struct {
	pair pair
	req  userFileKeySetRequest
}

// maxKeyBatch is how many wrapped keys are held before they are stored.
const maxKeyBatch = 500

// DistributeMissingKeys gives every user that lacks the file key of a file
// in the scopes a copy wrapped for each of the user's public keys. It pages
// through GET /v4/nodes/missingFileKeys of each scope until a page is the
// last (shorter than the page size, and the range's total reached),
// unwraps each file key once per page and stores the keys in batches that
// span scopes (one request for the keys of several files); a batch the
// server refuses is split so that one bad item does not fail the others.
// Pairs it cannot serve (it lacks the file key, the user has no usable
// public key) are counted as skipped and stepped over, so it always ends.
// Its memory is bounded by two pages, whatever the number of pairs.
//
// The error wraps the class of what went wrong: a key pair of the account
// that does not unlock (wrong encryption password) is permanent and is
// tried once; pairs that could not be stored make the error wrap
// ErrIncomplete (transient) with the counts.
func (c *Client) DistributeMissingKeys(ctx context.Context, scopes ...KeyScope) (messages.KeyStats, error) {
	if len(scopes) == 0 {
		return messages.KeyStats{}, errclass.AsPermanent(errors.New("cannot distribute missing keys: no scope"))
	}
	run := &keyRun{c: c}
	run.turn()
	for _, sc := range scopes {
		q, err := sc.query()
		if err != nil {
			return run.st, err
		}
		if err := run.scope(ctx, q); err != nil {
			return run.st, err
		}
	}
	run.flush(ctx)
	if err := ctx.Err(); err != nil {
		return run.st, err
	}
	if run.st.Failed > 0 {
		return run.st, fmt.Errorf("cannot store %d of %d missing file keys (%d skipped): %w",
			run.st.Failed, run.st.Failed+run.st.Set, run.st.Skipped, ErrIncomplete)
	}
	return run.st, nil
}

// keyRun is one DistributeMissingKeys: its counts, the keys not yet
// stored, and the pairs of the last two pages it stored or stepped over
// (a server whose listing lags behind its writes lists them again).
type keyRun struct {
	c       *Client
	st      messages.KeyStats
	pending []keyItem
	// recent pairs, by page: [0] this page's, [1] the page before's.
	served, counted [2]map[pair]bool
}

// seen reports whether p was stored or stepped over in the last two pages.
func (r *keyRun) seen(p pair) bool {
	return r.served[0][p] || r.served[1][p] || r.counted[0][p] || r.counted[1][p]
}

// turn starts a new page's memory of pairs, forgetting the oldest.
func (r *keyRun) turn() {
	r.served[1], r.served[0] = r.served[0], map[pair]bool{}
	r.counted[1], r.counted[0] = r.counted[0], map[pair]bool{}
}

// count marks p as stepped over (skipped or failed) once per memory.
func (r *keyRun) count(p pair, n *int) {
	if !r.counted[0][p] && !r.counted[1][p] {
		r.counted[0][p] = true
		*n++
	}
}

// scope serves the missing keys of one listing (q without its range).
// The keys of its last page may stay pending for the next scope's; every
// other page's are stored before the next page is asked for, as the
// listing's offset counts on the stored pairs being gone from it.
func (r *keyRun) scope(ctx context.Context, q url.Values) error {
	limit := r.c.cfg.MissingKeysPageSize
	q.Set("limit", strconv.Itoa(limit))
	var offset int64
	for page := 0; page < maxMissingKeyPages; page++ {
		if page > 0 || len(r.pending) >= maxKeyBatch {
			// Pairs that failed to store stay in the list, in front.
			failed := r.flush(ctx)
			if err := ctx.Err(); err != nil {
				return err
			}
			if page > 0 {
				offset += int64(failed)
			}
		}
		r.turn()
		q.Set("offset", strconv.FormatInt(offset, 10))
		var mk missingKeysResponse
		if err := r.c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes/missingFileKeys", query: q, idempotent: true}, &mk); err != nil {
			return fmt.Errorf("cannot list missing file keys: %w", err)
		}
		unserved, err := r.page(ctx, mk)
		if err != nil {
			return err
		}
		last := len(mk.Items) < limit && mk.Range.Total <= offset+int64(len(mk.Items))
		if len(mk.Items) == 0 || last {
			return nil
		}
		// Served items disappear from the list; the unserved stay in front.
		offset += int64(unserved)
	}
	return fmt.Errorf("GET /v4/nodes/missingFileKeys: %d pages and more: %w", maxMissingKeyPages, ErrListingEndless)
}

// page wraps the keys of one page of the listing for its pairs and adds
// them to the pending keys; it returns how many of the page's items stay
// in the list (stepped over, or listed again though already served).
func (r *keyRun) page(ctx context.Context, mk missingKeysResponse) (unserved int, err error) {
	fileKeys := map[int64][]crypto.FileKey{}
	for _, f := range mk.Files {
		fileKeys[f.ID] = append(fileKeys[f.ID], f.FileKeyContainer)
	}
	userKeys := map[int64][]crypto.PublicKeyContainer{}
	for _, u := range mk.Users {
		userKeys[u.ID] = append(userKeys[u.ID], u.PublicKeyContainer)
	}
	plain := map[int64]*crypto.PlainFileKey{} // nil value: this account cannot unwrap
	pubs := map[string]*crypto.PublicKey{}    // by version and PEM
	for _, it := range mk.Items {
		p := pair{it.UserID, it.FileID}
		if r.seen(p) {
			unserved++ // listed again: the server lags, or it failed before
			continue
		}
		pk, err := r.c.plainKeyFor(ctx, plain, it.FileID, fileKeys[it.FileID])
		if err != nil {
			return 0, fmt.Errorf("cannot distribute missing file keys: %w", err)
		}
		pubList := userKeys[it.UserID]
		if pk == nil || len(pubList) == 0 {
			unserved++
			r.count(p, &r.st.Skipped)
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
			r.pending = append(r.pending, keyItem{p, userFileKeySetRequest{FileID: it.FileID, UserID: it.UserID, FileKey: fk}})
			wrapped++
		}
		if wrapped == 0 {
			unserved++
			r.count(p, &r.st.Skipped)
		}
	}
	// Pending pairs count as served; those that fail to store are added
	// to the offset when they do (scope).
	return unserved, nil
}

// flush stores the pending keys, counts their pairs as set or failed and
// returns how many pairs failed.
func (r *keyRun) flush(ctx context.Context) int {
	if len(r.pending) == 0 {
		return 0
	}
	served := map[pair]bool{}
	failed := r.c.storeKeys(ctx, r.pending, served)
	r.pending = nil
	if ctx.Err() != nil {
		return 0
	}
	r.st.Set += len(served)
	for p := range served {
		r.served[0][p] = true
	}
	for _, p := range failed {
		r.count(p, &r.st.Failed)
	}
	return len(failed)
}

// storeKeys stores items (several per pair when a user has several public
// keys), marks the stored pairs in served and returns the pairs that could
// not be stored. A refused batch is split in halves down to single pairs,
// so that one bad item does not fail the rest; a transient failure of a
// batch fails its pairs without splitting.
func (c *Client) storeKeys(ctx context.Context, items []keyItem, served map[pair]bool) []pair {
	if len(items) == 0 {
		return nil
	}
	batch := make([]userFileKeySetRequest, len(items))
	for i, it := range items {
		batch[i] = it.req
	}
	err := c.call(ctx, &request{method: http.MethodPost, path: "/v4/nodes/files/keys",
		body: userFileKeySetBatchRequest{Items: batch}, ok: []int{http.StatusNoContent}, idempotent: true}, nil)
	if err == nil {
		for _, it := range items {
			served[it.pair] = true
		}
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	first, last := items[0].pair, items[len(items)-1].pair
	if errclass.IsPermanent(err) && first != last {
		// Split between pairs, never inside one pair's keys.
		mid := len(items) / 2
		for mid > 0 && items[mid].pair == items[mid-1].pair {
			mid--
		}
		if mid == 0 {
			mid = len(items) / 2
			for mid < len(items) && items[mid].pair == items[mid-1].pair {
				mid++
			}
		}
		return append(c.storeKeys(ctx, items[:mid], served), c.storeKeys(ctx, items[mid:], served)...)
	}
	c.log.WithError(err).WithField("items", len(items)).Warn("dracoon cannot set file keys")
	var failed []pair
	for i, it := range items {
		if i == 0 || it.pair != items[i-1].pair {
			failed = append(failed, it.pair)
		}
	}
	return failed
}

// plainKeyFor unwraps the file key of file once and caches it (nil when this
// account holds no usable key for it). A key pair of the account that
// cannot be used at all (wrong encryption password) is an error.
func (c *Client) plainKeyFor(ctx context.Context, cache map[int64]*crypto.PlainFileKey, file int64, keys []crypto.FileKey) (*crypto.PlainFileKey, error) {
	if pk, ok := cache[file]; ok {
		return pk, nil
	}
	var out *crypto.PlainFileKey
	for _, fk := range keys {
		priv, err := c.privateKeyForFileKey(ctx, fk.Version)
		if errors.Is(err, ErrNoKeyPair) {
			continue // the account has no key pair of this version
		}
		if err != nil {
			return nil, err
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
	return out, nil
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
