package steps

import (
	"context"
	"fmt"

	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// CheckInstance checks what a job of the instance needs from DRACOON, in
// this order: the instance configuration, the login, the key pair unlocked
// with the encryption password, and the parent room, reachable and
// encrypted. Its error starts with the failing part ("login: ...", "key
// pair: ...", "parent room 7: ..."). A refused login is not repeated before
// the client's login backoff runs out (dracoon.Config.LoginBackoff), so
// checking often cannot lock the account.
func (s *Service) CheckInstance(ctx context.Context, domain string) error {
	inst, err := s.instances.Instance(ctx, domain)
	if err != nil {
		return fmt.Errorf("instance configuration: %w", err)
	}
	client, err := s.accounts.Account(inst.Dracoon)
	if err != nil {
		return errclass.AsPermanent(fmt.Errorf("account: %w", err))
	}
	if _, err := client.Account(ctx); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if _, err := client.PrivateKey(ctx); err != nil {
		return fmt.Errorf("key pair: %w", err)
	}
	parent := inst.Dracoon.ParentRoomID
	room, err := client.Node(ctx, parent)
	if err != nil {
		return fmt.Errorf("parent room %d: %w", parent, err)
	}
	if room.Type != dracoon.NodeTypeRoom {
		return errclass.AsPermanent(fmt.Errorf("parent room %d: is a %s, not a room", parent, room.Type))
	}
	if !room.IsEncrypted {
		return fmt.Errorf("parent room %d: %w", parent, dracoon.ErrRoomNotEncrypted)
	}
	return nil
}
