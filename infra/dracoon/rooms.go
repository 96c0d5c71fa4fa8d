package dracoon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxCreateConflicts bounds how often a room that another client created
// concurrently (409) is looked up again.
const maxCreateConflicts = 3

// illegalNameChars are the characters DRACOON refuses in node names.
const illegalNameChars = `\<>:"|?*/`

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

// splitRoomPath splits path into room names and checks each.
func splitRoomPath(path string) ([]string, error) {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s == "" {
			continue
		}
		if s == "." || s == ".." || strings.ContainsAny(s, illegalNameChars) || strings.HasPrefix(s, "-") ||
			strings.HasSuffix(s, ".") || strings.TrimSpace(s) != s || len([]rune(s)) > 150 {
			return nil, fmt.Errorf("cannot use room path %q: segment %q: %w", path, s, ErrInvalidPath)
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// ensureRoom returns the room name below parent, creating it when missing.
func (c *Client) ensureRoom(ctx context.Context, parent int64, name string) (Node, error) {
	for try := 0; ; try++ {
		n, found, err := c.findRoom(ctx, parent, name)
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
		// Created concurrently by someone else: look it up again.
	}
}

// findRoom looks for the room name directly below parent, paging through
// the filtered list.
func (c *Client) findRoom(ctx context.Context, parent int64, name string) (Node, bool, error) {
	q := url.Values{
		"parent_id":   {strconv.FormatInt(parent, 10)},
		"depth_level": {"0"},
		"filter":      {"type:eq:room|name:eq:" + name},
		"limit":       {strconv.Itoa(maxListLimit)},
	}
	for offset := int64(0); ; {
		q.Set("offset", strconv.FormatInt(offset, 10))
		var list nodeList
		if err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes", query: q, idempotent: true}, &list); err != nil {
			return Node{}, false, fmt.Errorf("cannot list rooms: %w", err)
		}
		for _, n := range list.Items {
			if n.Type == NodeTypeRoom && n.Name == name {
				return n, true, nil
			}
		}
		offset += int64(len(list.Items))
		if len(list.Items) == 0 || offset >= list.Range.Total {
			return Node{}, false, nil
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
