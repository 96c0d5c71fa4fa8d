package dracoon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// maxCreateConflicts bounds how often a room that another client created
// concurrently (409) is looked up again.
const maxCreateConflicts = 3

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
func (c *Client) EnsureRoomPath(ctx context.Context, parentRoomID int64, path string) (Node, error) {
	segs, err := splitRoomPath(path)
	if err != nil {
		return Node{}, err
	}
	parent, err := c.Node(ctx, parentRoomID)
	if err != nil {
		return Node{}, fmt.Errorf("cannot resolve room path %q: %w", path, err)
	}
	if parent.Type != NodeTypeRoom {
		return Node{}, fmt.Errorf("cannot resolve room path %q: node %d is a %s, not a room: %w", path, parentRoomID, parent.Type, ErrInvalidPath)
	}
	if !parent.IsEncrypted {
		return Node{}, fmt.Errorf("cannot use room path %q below room %d: %w", path, parentRoomID, ErrRoomNotEncrypted)
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
	return cur, nil
}

// LookupRoomPath resolves path below the room parentRoomID like
// EnsureRoomPath, but creates nothing: found is false when a room of the
// path does not exist.
func (c *Client) LookupRoomPath(ctx context.Context, parentRoomID int64, path string) (n Node, found bool, err error) {
	segs, err := splitRoomPath(path)
	if err != nil {
		return Node{}, false, err
	}
	cur, err := c.Node(ctx, parentRoomID)
	if err != nil {
		return Node{}, false, fmt.Errorf("cannot look up room path %q: %w", path, err)
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
// contain "|" or ":", which no node name holds.
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
		return nil, fmt.Errorf("cannot look up the files named like %q in room %d: %w", text, roomID, err)
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

// listNodes pages through GET /v4/nodes with q and calls each for every
// node until it returns false.
func (c *Client) listNodes(ctx context.Context, q url.Values, each func(Node) bool) error {
	for offset := int64(0); ; {
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

// maxRoomTreeSize bounds WalkRooms on a server that keeps answering rooms.
const maxRoomTreeSize = 1_000_000

// WalkRooms calls fn for the room rootID and every room below it, level by
// level (breadth first), paging through each level. It stops at the first
// error of fn.
func (c *Client) WalkRooms(ctx context.Context, rootID int64, fn func(Node) error) error {
	root, err := c.Node(ctx, rootID)
	if err != nil {
		return err
	}
	if root.Type != NodeTypeRoom {
		return fmt.Errorf("cannot walk rooms below node %d: it is a %s: %w", rootID, root.Type, ErrInvalidPath)
	}
	queue := []Node{root}
	seen := map[int64]bool{root.ID: true}
	for len(queue) > 0 {
		room := queue[0]
		queue = queue[1:]
		if err := fn(room); err != nil {
			return err
		}
		q := url.Values{
			"parent_id":   {strconv.FormatInt(room.ID, 10)},
			"depth_level": {"0"},
			"filter":      {"type:eq:room"},
			"limit":       {strconv.Itoa(maxListLimit)},
		}
		err := c.listNodes(ctx, q, func(n Node) bool {
			if n.Type == NodeTypeRoom && !seen[n.ID] {
				seen[n.ID] = true
				queue = append(queue, n)
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("cannot list rooms below room %d: %w", room.ID, err)
		}
		if len(seen) > maxRoomTreeSize {
			return fmt.Errorf("cannot walk rooms below room %d: more than %d rooms", rootID, maxRoomTreeSize)
		}
	}
	return nil
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
