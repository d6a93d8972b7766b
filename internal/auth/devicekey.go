package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// Device ids are credentials: whoever presents one is logged in as its
// account. The store keeps only a keyed hash of each (HMAC-SHA256 under a
// 32-byte secret kept beside the signing keys, in KeysDir/device-id.key,
// mode 0600, sealed by the key provider like them), so a copy of the database alone neither logs anyone in nor
// lets an attacker test guesses offline; nodes share the secret as they
// share the signing keys. A stored device id is DeviceHashPrefix followed by
// the base64url MAC. No device id a client can send starts with it ('$' is
// not allowed in device ids), so a stored value can never be replayed as an
// id.
//
// Databases written before this scheme hold device ids in clear. They keep
// working: a device login that finds no hashed row looks the clear id up,
// and on a hit replaces it with its hash (the login goes on as usual); and
// Service.Run converts every remaining clear id at start, in batches, so
// none stays in clear past the first start of a node of this version.

// DeviceHashPrefix starts every hashed device id in the store.
const DeviceHashPrefix = "d1$"

const deviceKeyFile = "device-id.key"

// openDeviceKey reads dir's device-id secret, creating it when there is
// none. Nodes starting together agree: the file is created exclusively and
// whoever loses the race reads the winner's. A secret stored in clear is
// rewritten sealed when the directory is writable.
func openDeviceKey(dir KeysDir) ([]byte, error) {
	path := filepath.Join(dir.Path, deviceKeyFile)
	for range 3 {
		key, err := readDeviceKey(dir)
		if err == nil {
			return key, nil
		}
		if errors.Is(err, errDeviceKeyEmpty) {
			time.Sleep(50 * time.Millisecond) // a racing creator has not written it yet
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		content, err := dir.encodeDeviceKey(key)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			// A keys directory mounted read-only (a Kubernetes Secret) that
			// predates device-id hashing: say what to add.
			return nil, fmt.Errorf("keys: cannot create %s (%w); put 32 random bytes, base64-encoded, in that file "+
				"(for example: head -c 32 /dev/urandom | base64) and share it with every node like the signing keys", path, err)
		}
		_, werr := f.WriteString(content)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("keys: write %s: %w", path, werr)
		}
		return key, nil
	}
	return nil, fmt.Errorf("keys: cannot read or create %s", path)
}

var errDeviceKeyEmpty = errors.New("keys: device-id secret file is empty")

// readDeviceKey reads the device-id secret (sealed or in clear); one in
// clear is rewritten sealed when the directory is writable.
func readDeviceKey(dir KeysDir) ([]byte, error) {
	path := filepath.Join(dir.Path, deviceKeyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, errDeviceKeyEmpty
	}
	key, inClear, err := dir.decodeDeviceKey(string(data))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("keys: %s is not 32 base64-encoded bytes nor a sealed secret (%v)", path, err)
	}
	if inClear && dir.Seal != nil {
		if err := dir.rewriteDeviceKey(key); err != nil && !errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
	}
	return key, nil
}

// rewriteDeviceKey replaces the device-id secret's file, sealed.
func (d KeysDir) rewriteDeviceKey(key []byte) error {
	content, err := d.encodeDeviceKey(key)
	if err != nil {
		return err
	}
	path := filepath.Join(d.Path, deviceKeyFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return os.Rename(tmp, path)
}

// deviceHash is the stored form of a device id.
func (s *Service) deviceHash(deviceID string) string {
	m := hmac.New(sha256.New, s.deviceKey)
	m.Write([]byte(deviceID))
	return DeviceHashPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// accountByDevice finds the account of a device id by its keyed hash h, or
// by the id in clear in a database written before hashing (one query for
// both, so a first login costs no second round trip), converting the row on
// a clear hit. Devices is not filled.
func (s *Service) accountByDevice(ctx context.Context, deviceID, h string) (store.Account, error) {
	a, stored, err := s.st.AccountByDeviceIDs(ctx, h, deviceID)
	if err != nil || stored == h {
		return a, err
	}
	if err := s.st.RekeyDevice(ctx, deviceID, h); err != nil {
		s.log.Warn("hash a device id stored in clear", "account", a.ID, "err", err)
	}
	return a, nil
}

// deviceAccount is a device login's account: its id, username, roles and
// whether it is banned. With the caches (Deps.Devices and Deps.Profiles) a
// known device reads no table: its hash gives the account id (a device is
// linked once and stays with its account until the account is deleted), and
// the id gives the cached profile, which every write of the account (a ban,
// a role or name change) and its deletion invalidate on every node. An
// account the deny list holds an account-wide revocation of (a ban, a role
// removal, a password change, a deletion, a kick: made here, or on another
// node or by the command line and synced) is read from the store instead,
// so a profile cached before such a change (a load that raced the
// invalidation) never decides a login once the deny list has the change. A
// cached device whose account is gone (its profile no longer loads) is
// dropped and looked up again, so the id is free for a new account as
// before. store.ErrNotFound for a device not linked to any account; nothing
// is cached for it.
func (s *Service) deviceAccount(ctx context.Context, deviceID string) (a store.Account, banned bool, err error) {
	h := s.deviceHash(deviceID)
	fromStore := func() (store.Account, bool, error) {
		a, err := s.accountByDevice(ctx, deviceID, h)
		return a, a.Banned(), err
	}
	if s.devices == nil || s.profiles == nil {
		return fromStore()
	}
	id, err := s.devices.GetOrLoad(ctx, h, s.profileTTL, func(ctx context.Context) (string, error) {
		a, err := s.accountByDevice(ctx, deviceID, h)
		return a.ID, err
	})
	if err != nil {
		return store.Account{}, false, err
	}
	if s.deny.AccountRevoked(id) {
		return fromStore()
	}
	p, err := loadProfile(ctx, s.st, s.profiles, s.profileTTL, id)
	if errcode.Is(err, errcode.NotFound) {
		_ = s.devices.Delete(context.WithoutCancel(ctx), h)
		return fromStore()
	}
	if err != nil {
		return store.Account{}, false, err
	}
	return store.Account{ID: p.ID, Username: p.Username, Roles: p.Roles}, p.Banned, nil
}

// hashLegacyDevices converts every device id stored in clear to its keyed
// hash, batch by batch, and returns how many it converted.
func (s *Service) hashLegacyDevices(ctx context.Context) (int, error) {
	n, after := 0, ""
	for {
		ids, err := s.st.ClearDevices(ctx, DeviceHashPrefix, after, 500)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		for _, id := range ids {
			if err := s.st.RekeyDevice(ctx, id, s.deviceHash(id)); err != nil {
				return n, err
			}
			n++
		}
		after = ids[len(ids)-1]
	}
}

// Device logs in with a device id, creating a guest account on first use.
func (s *Service) Device(ctx context.Context, deviceID string, m Meta) (TokenPair, error) {
	if err := validDevice(deviceID); err != nil {
		return TokenPair{}, err
	}
	if retry, ok := s.deviceAllowed(ctx, m.IP, s.now()); !ok {
		return TokenPair{}, s.refuseThrottled(ctx, ScopeDeviceIP, m.IP, "", retry, m)
	}
	a, banned, err := s.deviceAccount(ctx, deviceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p, err := s.deviceSignup(ctx, deviceID, m)
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Field != "device_id" {
			return p, err
		}
		// Two first logins of one device raced; the other one won.
		if a, banned, err = s.deviceAccount(ctx, deviceID); err != nil {
			return TokenPair{}, err
		}
	case err != nil:
		return TokenPair{}, err
	}
	if banned {
		s.audit(ctx, AuditLoginFail, a.ID, "", m, map[string]any{"reason": "banned", "device": true})
		return TokenPair{}, errBanned
	}
	return s.startSession(ctx, a, loginAudit(s.auditEvent(AuditDeviceLogin, a.ID, "", m, nil)))
}

// deviceSignup is a device's first login: a guest account, its device, its
// session and audit rows, committed together. A *store.ConflictError on
// device_id means a racing first login of the same device linked it first.
func (s *Service) deviceSignup(ctx context.Context, deviceID string, m Meta) (TokenPair, error) {
	if err := s.allowSignup(ctx, m); err != nil {
		s.deviceMiss(ctx, m.IP)
		return TokenPair{}, err
	}
	now := s.now()
	a := store.Account{ID: uuid.Must(uuid.NewV7()).String(), Username: "guest-" + strings.ToLower(randomID(9)),
		Roles: []string{RolePlayer}, CreatedAt: now, UpdatedAt: now, Devices: []string{s.deviceHash(deviceID)}}
	w := loginAudit(s.auditEvent(AuditRegister, a.ID, "", m, map[string]any{"guest": true}), s.auditEvent(AuditDeviceLogin, a.ID, "", m, nil))
	w.Account, w.Device = a, a.Devices[0]
	p, err := s.startSession(ctx, a, w)
	p.Created = err == nil
	return p, err
}

// BlindIndexKey is the deployment's key for blind indexes of personal
// data (the email column's index): derived from the device-id secret, so
// every node that shares the keys directory computes the same indexes and
// nothing new has to be shared. Deriving separates the two uses.
func BlindIndexKey(dir KeysDir) ([]byte, error) {
	k, err := openDeviceKey(dir)
	if err != nil {
		return nil, err
	}
	return derivedKey(k, "mj-blind-index-key-v1"), nil
}

// AddressKey is the key the gateway names client addresses with in the
// shared key-value store (rate-limit buckets, match-limit lists; see
// KeyedName), for a process that has the keys directory and no
// gateway.address_key_file: derived from the device-id secret, so every
// node sharing the directory derives the same, apart from the throttles'
// key (another use, another label).
func AddressKey(dir KeysDir) ([]byte, error) {
	k, err := openDeviceKey(dir)
	if err != nil {
		return nil, err
	}
	return derivedKey(k, "mj-gateway-address-names-v1"), nil
}

// derivedKey is a key for one use, derived from the device-id secret.
func derivedKey(secret []byte, use string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(use))
	return m.Sum(nil)
}

// SealClear seals, batch by batch, the personal data stored in clear
// (store.SealClear), calling progress after each batch when not nil, and
// returns how many rows it changed.
func SealClear(ctx context.Context, st interface {
	SealClear(ctx context.Context, limit int) (int, error)
}, progress func(total int)) (int, error) {
	total := 0
	for {
		n, err := st.SealClear(ctx, 500)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
		if progress != nil {
			progress(total)
		}
	}
}
