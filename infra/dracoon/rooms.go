package dracoon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// maxCreateConflicts bounds how often a room that another client created
// concurrently (409) is looked up again.
const maxCreateConflicts = 3

// Room path cache: EnsureRoomPath resolves a path once and reuses the room
// for RoomCacheTTL; a request that finds a cached room gone (404) forgets
// it, so that the next EnsureRoomPath resolves the path again.
const (
	// RoomCacheTTL is how long a resolved room path is reused.
	RoomCacheTTL = 15 * time.Minute
	// maxCachedRooms bounds the cache; a full cache is emptied.
	maxCachedRooms = 10_000
)

// roomKey is a room path below a parent room, its segments joined by "/".
type roomKey struct {
	parent int64
	path   string
}

// roomCache holds the rooms EnsureRoomPath resolved and checked. Safe for
// concurrent use.
type roomCache struct {
	mu    sync.Mutex
	rooms map[roomKey]cachedRoom
}

type cachedRoom struct {
	node Node
	at   time.Time
}

func (rc *roomCache) get(k roomKey) (Node, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r, ok := rc.rooms[k]
	if !ok || time.Since(r.at) >= RoomCacheTTL {
		return Node{}, false
	}
	return r.node, true
}

func (rc *roomCache) put(k roomKey, n Node) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.rooms == nil || len(rc.rooms) >= maxCachedRooms {
		rc.rooms = map[roomKey]cachedRoom{}
	}
	rc.rooms[k] = cachedRoom{node: n, at: time.Now()}
}

// forget drops every path that resolved to the room id, or that lies
// below it.
func (rc *roomCache) forget(id int64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for k, r := range rc.rooms {
		if r.node.ID == id || k.parent == id {
			delete(rc.rooms, k)
		}
	}
}

// roomGone marks err, the failure of a request about the room id, with
// ErrRoomNotFound when the server did not find the room (404), and forgets
// the room's cached paths.
func (c *Client) roomGone(id int64, err error) error {
	if !IsStatus(err, http.StatusNotFound) {
		return err
	}
	c.rooms.forget(id)
	return fmt.Errorf("room %d: %w: %w", id, ErrRoomNotFound, err)
}

// Node returns a node by id.
func (c *Client) Node(ctx context.Context, id int64) (Node, error) {
	var n Node
	err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes/" + strconv.FormatInt(id, 10),
		route: "GET /v4/nodes/{node_id}", idempotent: true}, &n)
	if err != nil {
		return n, fmt.Errorf("cannot get node %d: %w", id, err)
	}
	return n, nil
}

// EnsureRoomPath resolves path, a "/"-separated list of room names below the
// room parentRoomID, segment by segment, creating missing rooms (inheriting
// permissions), and returns the last room. A room that a concurrent caller
// created first is looked up again. It refuses a target room that is not
// encrypted or where the account lacks create permission, with an error
// wrapping ErrRoomNotEncrypted or ErrNoCreatePermission. An empty path means
// the parent room itself.
//
// A path resolved and checked before is answered from the client's cache
// without a request for RoomCacheTTL, unless a request found its room gone
// since (see ErrRoomNotFound).
func (c *Client) EnsureRoomPath(ctx context.Context, parentRoomID int64, path string) (Node, error) {
	segs, err := splitRoomPath(path)
	if err != nil {
		return Node{}, err
	}
	key := roomKey{parent: parentRoomID, path: strings.Join(segs, "/")}
	if n, ok := c.rooms.get(key); ok {
		return n, nil
	}
	parent, err := c.Node(ctx, parentRoomID)
	if err != nil {
		return Node{}, fmt.Errorf("cannot resolve room path %q: parent room %d: %w", path, parentRoomID, err)
	}
	if parent.Type != NodeTypeRoom {
		return Node{}, fmt.Errorf("cannot resolve room path %q: parent room %d is a %s, not a room: %w", path, parentRoomID, parent.Type, ErrInvalidPath)
	}
	if !parent.IsEncrypted {
		return Node{}, fmt.Errorf("cannot use room path %q below parent room %d: %w", path, parentRoomID, ErrRoomNotEncrypted)
	}
	cur := parent
	for i, name := range segs {
		cur, err = c.ensureRoom(ctx, cur.ID, name)
		if err != nil {
			return Node{}, fmt.Errorf("cannot resolve room path %q at %q: %w", path, strings.Join(segs[:i+1], "/"), err)
		}
	}
	if len(segs) > 0 {
		// List entries omit some details: check the target itself.
		if cur, err = c.Node(ctx, cur.ID); err != nil {
			return Node{}, fmt.Errorf("cannot resolve room path %q: %w", path, err)
		}
	}
	if !cur.IsEncrypted {
		return Node{}, fmt.Errorf("cannot use room path %q (room %d): %w", path, cur.ID, ErrRoomNotEncrypted)
	}
	if cur.Permissions == nil || !cur.Permissions.Create {
		return Node{}, fmt.Errorf("cannot use room path %q (room %d): %w", path, cur.ID, ErrNoCreatePermission)
	}
	c.rooms.put(key, cur)
	return cur, nil
}

// LookupRoomPath resolves path below the room parentRoomID like
// EnsureRoomPath, but creates nothing: found is false when a room of the
// path does not exist. A path EnsureRoomPath resolved is answered from the
// cache as there.
func (c *Client) LookupRoomPath(ctx context.Context, parentRoomID int64, path string) (n Node, found bool, err error) {
	segs, err := splitRoomPath(path)
	if err != nil {
		return Node{}, false, err
	}
	if n, ok := c.rooms.get(roomKey{parent: parentRoomID, path: strings.Join(segs, "/")}); ok {
		return n, true, nil
	}
	cur, err := c.Node(ctx, parentRoomID)
	if err != nil {
		return Node{}, false, fmt.Errorf("cannot look up room path %q: parent room %d: %w", path, parentRoomID, err)
	}
	for i, name := range segs {
		cur, found, err = c.findChild(ctx, cur.ID, NodeTypeRoom, name)
		if err != nil {
			return Node{}, false, fmt.Errorf("cannot look up room path %q at %q: %w", path, strings.Join(segs[:i+1], "/"), err)
		}
		if !found {
			return Node{}, false, nil
		}
	}
	return cur, true, nil
}

// splitRoomPath splits path into room names and checks each with the one
// name rule (messages.CheckNodeName).
func splitRoomPath(path string) ([]string, error) {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s == "" {
			continue
		}
		if err := messages.CheckNodeName(s); err != nil {
			return nil, fmt.Errorf("cannot use room path %q: segment %q: %w: %w", path, s, ErrInvalidPath, err)
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// ensureRoom returns the room name below parent, creating it when missing.
// A creation whose answer was lost is repeated and meets 409, which means
// "look again".
func (c *Client) ensureRoom(ctx context.Context, parent int64, name string) (Node, error) {
	for try := 0; ; try++ {
		n, found, err := c.findChild(ctx, parent, NodeTypeRoom, name)
		if err != nil || found {
			return n, err
		}
		n, err = c.createRoom(ctx, parent, name)
		if err == nil {
			return n, nil
		}
		if !IsStatus(err, http.StatusConflict) || try >= maxCreateConflicts {
			return Node{}, err
		}
		// Created concurrently by someone else, or by the attempt whose
		// answer was lost: look it up again.
	}
}

// FindFile looks for the file name (exact match) directly in the room
// roomID, paging through the filtered list. The node carries the file's id,
// size and creation time.
func (c *Client) FindFile(ctx context.Context, roomID int64, name string) (Node, bool, error) {
	n, found, err := c.findChild(ctx, roomID, NodeTypeFile, name)
	if err != nil {
		return Node{}, false, fmt.Errorf("cannot look up file %q in room %d: %w", name, roomID, err)
	}
	return n, found, nil
}

// maxFoundFiles bounds FindFiles on a room that keeps answering files.
const maxFoundFiles = 10_000

// FindFiles returns the files directly in the room roomID whose names
// contain text (DRACOON compares without regard to case), with their notes,
// in one filtered listing (paged when long). text must not be empty nor
// contain "|" or ":", which no node name holds. A room that is gone gives
// an error wrapping ErrRoomNotFound.
func (c *Client) FindFiles(ctx context.Context, roomID int64, text string) ([]Node, error) {
	if text == "" || strings.ContainsAny(text, "|:") {
		return nil, errclass.AsPermanent(fmt.Errorf("cannot look up files in room %d by %q: not a text a name can hold", roomID, text))
	}
	q := url.Values{
		"parent_id":   {strconv.FormatInt(roomID, 10)},
		"depth_level": {"0"},
		"filter":      {"type:eq:" + NodeTypeFile + "|name:cn:" + text},
		"limit":       {strconv.Itoa(maxListLimit)},
	}
	var files []Node
	err := c.listNodes(ctx, q, func(n Node) bool {
		if n.Type == NodeTypeFile {
			files = append(files, n)
		}
		return len(files) <= maxFoundFiles
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot look up the files named like %q in room %d: %w", text, roomID, c.roomGone(roomID, err))
	case len(files) > maxFoundFiles:
		return nil, errclass.AsPermanent(fmt.Errorf("cannot look up the files named like %q in room %d: more than %d", text, roomID, maxFoundFiles))
	}
	return files, nil
}

// findChild looks for the node of type typ and name directly below parent,
// paging through the filtered list.
func (c *Client) findChild(ctx context.Context, parent int64, typ, name string) (Node, bool, error) {
	q := url.Values{
		"parent_id":   {strconv.FormatInt(parent, 10)},
		"depth_level": {"0"},
		"filter":      {"type:eq:" + typ + "|name:eq:" + name},
		"limit":       {strconv.Itoa(maxListLimit)},
	}
	var found Node
	err := c.listNodes(ctx, q, func(n Node) bool {
		if n.Type == typ && n.Name == name {
			found = n
			return false
		}
		return true
	})
	if err != nil {
		return Node{}, false, fmt.Errorf("cannot list %ss: %w", typ, err)
	}
	return found, found.ID != 0, nil
}

// maxListPages bounds listNodes: a listing of more pages than this (at
// most 500 nodes each) is taken for a server that never ends it (one that
// misstates range.total, ignores the offset, or answers full pages for
// ever) and fails, permanently, naming the listing.
const maxListPages = 200

// ErrListingEndless reports a paged listing that did not end within its
// bound of pages: the server keeps answering more (a range.total that is
// wrong, an offset ignored). Repeating cannot help.
var ErrListingEndless = errclass.New(errclass.Permanent, "listing does not end")

// listNodes pages through GET /v4/nodes with q and calls each for every
// node until it returns false. It stops with an error wrapping
// ErrListingEndless after maxListPages pages.
func (c *Client) listNodes(ctx context.Context, q url.Values, each func(Node) bool) error {
	for offset, page := int64(0), 0; ; page++ {
		if page >= maxListPages {
			return fmt.Errorf("GET /v4/nodes (parent %s, filter %q): %d pages, %d nodes and more: %w",
				q.Get("parent_id"), q.Get("filter"), page, offset, ErrListingEndless)
		}
		q.Set("offset", strconv.FormatInt(offset, 10))
		var list nodeList
		if err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes", query: q, idempotent: true}, &list); err != nil {
			return err
		}
		for _, n := range list.Items {
			if !each(n) {
				return nil
			}
		}
		offset += int64(len(list.Items))
		if len(list.Items) == 0 || offset >= list.Range.Total {
			return nil
		}
	}
}

// createRoom creates the room name below parent, inheriting its permissions.
func (c *Client) createRoom(ctx context.Context, parent int64, name string) (Node, error) {
	var n Node
	err := c.call(ctx, &request{method: http.MethodPost, path: "/v4/nodes/rooms",
		body: createRoomRequest{Name: name, ParentID: parent, InheritPermissions: true},
		ok:   []int{http.StatusCreated}, idempotent: true}, &n)
	if err != nil {
		return n, fmt.Errorf("cannot create room: %w", err)
	}
	c.log.WithFields(map[string]any{"room_id": n.ID, "parent_id": parent}).Info("dracoon room created")
	return n, nil
}
