package gateway_test

import (
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/errcode"
)

// DELETE /v1/account: a password account must give its password (400
// without, 401 wrong); then the account is gone: its token and refresh
// token are refused, its name logs nobody in and can be taken again. A
// guest account is deleted on its token alone. An operator deletes others'
// accounts, not their own.
func TestDeleteAccount(t *testing.T) {
	e := newEnv(t)
	tr := e.register("leaving")
	if r := e.do("DELETE", "/v1/account", tr.AccessToken, "", nil); r.status != 400 || r.errBody(t).Field != "current_password" {
		t.Fatalf("no password: %d %s; want 400 naming current_password", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/account", tr.AccessToken, "application/json", []byte(`{"current_password":"wrong-password"}`)); r.status != 401 {
		t.Fatalf("wrong password: %d %s; want 401", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/account", tr.AccessToken, "application/json", []byte(`{"current_password":"leaving-password","x":1}`)); r.status != 400 {
		t.Fatalf("unknown field: %d %s; want 400", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/account", tr.AccessToken, "application/json", []byte(`{"current_password":"leaving-password"}`)); r.status != 204 {
		t.Fatalf("delete: %d %s; want 204", r.status, r.body)
	}
	if r := e.do("GET", "/v1/account", tr.AccessToken, "", nil); r.status != 401 {
		t.Errorf("the deleted account's token: %d, want 401", r.status)
	}
	if r := e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": tr.RefreshToken}); r.status != 401 {
		t.Errorf("the deleted account's refresh token: %d, want 401", r.status)
	}
	if r := e.post("/v1/auth/login", "", map[string]string{"username": "leaving", "password": "leaving-password"}); r.status != 401 {
		t.Errorf("login as the deleted account: %d, want 401", r.status)
	}
	if again := e.register("leaving"); again.AccountID == tr.AccountID {
		t.Error("the name was taken again by the same account id")
	}

	var guest struct {
		AccessToken string `json:"access_token"`
	}
	e.post("/v1/auth/device", "", map[string]string{"device_id": "guest-device-0001"}).json(t, &guest)
	if r := e.do("DELETE", "/v1/account", guest.AccessToken, "", nil); r.status != 204 {
		t.Fatalf("guest delete: %d %s; want 204", r.status, r.body)
	}

	admin := e.adminToken("operator")
	victim := e.register("victim")
	if r := e.do("DELETE", "/v1/admin/accounts/"+victim.AccountID, victim.AccessToken, "", nil); r.status != 403 {
		t.Errorf("a player deleting through the admin route: %d, want 403", r.status)
	}
	if r := e.do("DELETE", "/v1/admin/accounts/"+victim.AccountID, admin, "", nil); r.status != 204 {
		t.Fatalf("admin delete: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/admin/accounts/"+victim.AccountID, admin, "", nil); r.status != 404 {
		t.Errorf("second admin delete: %d, want 404", r.status)
	}
	p, err := e.auth.Authenticate(admin)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("DELETE", "/v1/admin/accounts/"+p.AccountID, admin, "", nil); r.status != 409 || r.errBody(t).Code != errcode.Conflict {
		t.Errorf("an operator deleting their own account through the admin route: %d %s, want 409", r.status, r.body)
	}
	audit := string(e.do("GET", "/v1/admin/audit?kind=account_deleted", admin, "", nil).body)
	if n := strings.Count(audit, `"account_deleted"`); n != 3 {
		t.Errorf("audit rows of kind account_deleted: %d, want 3\n%s", n, audit)
	}
}
