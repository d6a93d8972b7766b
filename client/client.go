// Package client is the Go client SDK for a multijuego server: accounts
// (register, login, guest devices), tokens that refresh themselves, the HTTP
// match API, and the realtime socket (Connect): create, list, join, leave
// and resume matches, send inputs, receive match frames (docs/protocol.md).
//
// A Client is safe for concurrent use. It keeps the session's tokens: an
// access token about to expire is refreshed before a call, and a call
// refused for an expired token is refreshed and retried once.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tokens are a session's credentials.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time // when the access token expires (client clock)
	AccountID    string
}

// APIError is an error answer of the server: the HTTP status and the
// server's stable code (for example "unauthenticated", "rate_limited"),
// message and field.
type APIError struct {
	Status     int
	Code       string
	Message    string
	Field      string
	RequestID  string
	RetryAfter time.Duration // for 429 and 503
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("multijuego: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// ErrNoSession is returned by calls that need a session when there is none.
var ErrNoSession = errors.New("multijuego: not logged in")

// Client talks to one multijuego server.
type Client struct {
	base *url.URL
	hc   *http.Client
	now  func() time.Time

	mu        sync.Mutex // guards tokens; held across a refresh so only one runs
	tokens    Tokens
	onRefresh func(Tokens)
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (timeouts, TLS, proxies).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTokens resumes a saved session.
func WithTokens(t Tokens) Option { return func(c *Client) { c.tokens = t } }

// WithClock sets the clock used to decide when to refresh (tests).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// OnRefresh is called with the new tokens after every refresh, so an app can
// save them.
func OnRefresh(fn func(Tokens)) Option { return func(c *Client) { c.onRefresh = fn } }

// New returns a client for the server at baseURL (for example
// "http://127.0.0.1:7350").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("multijuego: base URL must be http(s)://HOST[:PORT], got %q", baseURL)
	}
	c := &Client{base: u, hc: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Tokens returns the current session's tokens (zero when logged out).
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	AccountID    string `json:"account_id"`
}

// Register creates a password account and logs in. email may be empty.
func (c *Client) Register(ctx context.Context, username, email, password string) (Tokens, error) {
	return c.startSession(ctx, "/v1/auth/register", map[string]string{"username": username, "email": email, "password": password})
}

// Login logs in with a username or an email address (anything with an @).
func (c *Client) Login(ctx context.Context, usernameOrEmail, password string) (Tokens, error) {
	key := "username"
	if strings.Contains(usernameOrEmail, "@") {
		key = "email"
	}
	return c.startSession(ctx, "/v1/auth/login", map[string]string{key: usernameOrEmail, "password": password})
}

// Device logs in as the guest account of a device id (10–128 characters of
// letters, digits and - _ . :), creating it on first use.
func (c *Client) Device(ctx context.Context, deviceID string) (Tokens, error) {
	return c.startSession(ctx, "/v1/auth/device", map[string]string{"device_id": deviceID})
}

// OIDC signs in with an ID token or access token of an identity provider
// the server trusts (Amazon Cognito or any OpenID Connect issuer), creating
// an account on the identity's first sign-in. issuer is the provider's
// name in the server's configuration, or "" to let the token's iss say.
func (c *Client) OIDC(ctx context.Context, token, issuer string) (Tokens, error) {
	return c.startSession(ctx, "/v1/auth/oidc", map[string]string{"token": token, "issuer": issuer})
}

func (c *Client) startSession(ctx context.Context, path string, body any) (Tokens, error) {
	var tr tokenResponse
	if err := c.do(ctx, http.MethodPost, path, "", body, &tr); err != nil {
		return Tokens{}, err
	}
	t := c.tokensOf(tr)
	c.mu.Lock()
	c.tokens = t
	c.mu.Unlock()
	return t, nil
}

func (c *Client) tokensOf(tr tokenResponse) Tokens {
	return Tokens{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, AccountID: tr.AccountID,
		ExpiresAt: c.now().Add(time.Duration(tr.ExpiresIn) * time.Second)}
}

// Refresh exchanges the refresh token for a new pair now.
func (c *Client) Refresh(ctx context.Context) (Tokens, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx, "")
}

// refreshLocked refreshes unless another caller already replaced the access
// token stale (then its result is used). Caller holds mu.
func (c *Client) refreshLocked(ctx context.Context, stale string) (Tokens, error) {
	if c.tokens.RefreshToken == "" {
		return Tokens{}, ErrNoSession
	}
	if stale != "" && c.tokens.AccessToken != stale {
		return c.tokens, nil
	}
	var tr tokenResponse
	if err := c.do(ctx, http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": c.tokens.RefreshToken}, &tr); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			c.tokens = Tokens{} // the session is over (expired, revoked or reused)
		}
		return Tokens{}, err
	}
	c.tokens = c.tokensOf(tr)
	if c.onRefresh != nil {
		c.onRefresh(c.tokens)
	}
	return c.tokens, nil
}

// refreshMargin: an access token this close to expiry is refreshed first.
const refreshMargin = 30 * time.Second

// accessToken returns a usable access token, refreshing when it is about to
// expire.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens.AccessToken == "" {
		return "", ErrNoSession
	}
	if c.now().Add(refreshMargin).Before(c.tokens.ExpiresAt) {
		return c.tokens.AccessToken, nil
	}
	t, err := c.refreshLocked(ctx, c.tokens.AccessToken)
	return t.AccessToken, err
}

// authed makes an authenticated call; refused for an invalid token, it
// refreshes once and retries.
func (c *Client) authed(ctx context.Context, method, path string, body, out any) error {
	tok, err := c.accessToken(ctx)
	if err != nil {
		return err
	}
	err = c.do(ctx, method, path, tok, body, out)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		return err
	}
	c.mu.Lock()
	_, rerr := c.refreshLocked(ctx, tok)
	tok = c.tokens.AccessToken
	c.mu.Unlock()
	if rerr != nil {
		return err // the original refusal says more than the refresh's
	}
	return c.do(ctx, method, path, tok, body, out)
}

// Logout ends the session on the server and forgets the tokens.
func (c *Client) Logout(ctx context.Context) error {
	tok, err := c.accessToken(ctx)
	if err != nil {
		return err
	}
	err = c.do(ctx, http.MethodPost, "/v1/auth/logout", tok, nil, nil)
	c.mu.Lock()
	c.tokens = Tokens{}
	c.mu.Unlock()
	return err
}

// Account is the caller's account.
type Account struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	Email       string    `json:"email,omitempty"`
	Roles       []string  `json:"roles"`
	Guest       bool      `json:"guest"`
	DeviceCount int       `json:"device_count"` // device ids are credentials and never shown
	Banned      bool      `json:"banned"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Account returns the logged-in account.
func (c *Client) Account(ctx context.Context) (Account, error) {
	var a Account
	err := c.authed(ctx, http.MethodGet, "/v1/account", nil, &a)
	return a, err
}

// Match is a live match.
type Match struct {
	MatchID    string    `json:"match_id"`
	Mode       string    `json:"mode"`
	Label      string    `json:"label"`
	TickRate   int       `json:"tick_rate"`
	Players    int       `json:"players"`
	MaxPlayers int       `json:"max_players"`
	Open       bool      `json:"open"`
	Created    time.Time `json:"created"`
}

// CreateMatch starts a match of a game mode (the stock server: "arena",
// "tictactoe") with mode-specific parameters (may be nil).
func (c *Client) CreateMatch(ctx context.Context, mode string, params map[string]string) (Match, error) {
	var m Match
	err := c.authed(ctx, http.MethodPost, "/v1/matches", map[string]any{"mode": mode, "params": params}, &m)
	return m, err
}

// ListMatches lists open matches, of one mode and label when not empty.
func (c *Client) ListMatches(ctx context.Context, mode, label string) ([]Match, error) {
	q := url.Values{}
	if mode != "" {
		q.Set("mode", mode)
	}
	if label != "" {
		q.Set("label", label)
	}
	path := "/v1/matches"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		Matches []Match `json:"matches"`
	}
	err := c.authed(ctx, http.MethodGet, path, nil, &out)
	return out.Matches, err
}

// maxResponse bounds what the client reads of one answer.
const maxResponse = 4 << 20

func (c *Client) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return err
	}
	if res.StatusCode >= 400 {
		return apiError(res, raw)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("multijuego: %s %s: unreadable answer: %w", method, path, err)
	}
	return nil
}

func apiError(res *http.Response, raw []byte) error {
	var retry time.Duration
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		retry = time.Duration(s) * time.Second
	}
	return NewAPIError(res.StatusCode, retry, raw)
}

// NewAPIError is the APIError of an answer other than a 2xx, for a client
// that does its own HTTP: status, the Retry-After it gave (0 if none) and
// its body, the server's error object or anything else (then the error
// has the status alone, as code http_STATUS).
func NewAPIError(status int, retryAfter time.Duration, body []byte) *APIError {
	var v struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			Field     string `json:"field"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	e := &APIError{Status: status, RetryAfter: retryAfter}
	if json.Unmarshal(body, &v) == nil && v.Error.Code != "" {
		e.Code, e.Message, e.Field, e.RequestID = v.Error.Code, v.Error.Message, v.Error.Field, v.Error.RequestID
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(status), http.StatusText(status)
	}
	return e
}
