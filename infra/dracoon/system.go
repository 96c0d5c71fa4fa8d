package dracoon

import (
	"context"
	"fmt"
	"net/http"
)

// SystemInfo returns the public system information (no authentication
// needed). It is fetched once per Client and cached.
func (c *Client) SystemInfo(ctx context.Context) (SystemInfo, error) {
	c.sysMu.Lock()
	defer c.sysMu.Unlock()
	if c.sys != nil {
		return *c.sys, nil
	}
	var si SystemInfo
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/public/system/info", noAuth: true, idempotent: true}, &si); err != nil {
		return si, fmt.Errorf("cannot get system info: %w", err)
	}
	c.sys = &si
	return si, nil
}

// Account returns the account the client is logged in as.
func (c *Client) Account(ctx context.Context) (UserAccount, error) {
	var ua UserAccount
	if err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/user/account", idempotent: true}, &ua); err != nil {
		return ua, fmt.Errorf("cannot get user account: %w", err)
	}
	return ua, nil
}
