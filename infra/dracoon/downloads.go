package dracoon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

// Download returns the stored content of a file (ciphertext in encrypted
// rooms) as a stream, and its length (-1 if unknown). The caller closes it.
func (c *Client) Download(ctx context.Context, fileID int64) (io.ReadCloser, int64, error) {
	var dt downloadTokenResponse
	err := c.call(ctx, &request{method: http.MethodPost, path: "/v4/nodes/files/" + strconv.FormatInt(fileID, 10) + "/downloads",
		route: "POST /v4/nodes/files/{file_id}/downloads", idempotent: true}, &dt)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot create download of file %d: %w", fileID, err)
	}
	resp, err := c.send(ctx, &request{method: http.MethodGet, rawURL: dt.DownloadURL, route: "GET /v4/downloads/{token}",
		noAuth: true, idempotent: true})
	if err != nil {
		return nil, 0, fmt.Errorf("cannot download file %d: %w", fileID, err)
	}
	return resp.Body, resp.ContentLength, nil
}

// DownloadDecrypted downloads a file of an encrypted room, decrypts it with
// the account's file key into w and returns the plaintext length. The
// content is authentic only when the error is nil.
func (c *Client) DownloadDecrypted(ctx context.Context, fileID int64, w io.Writer) (int64, error) {
	pk, err := c.PlainFileKey(ctx, fileID)
	if err != nil {
		return 0, err
	}
	body, _, err := c.Download(ctx, fileID)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := crypto.DecryptStream(pk, w, body)
	if err != nil {
		return n, fmt.Errorf("cannot decrypt file %d: %w", fileID, err)
	}
	return n, nil
}
