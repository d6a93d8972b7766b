package auth

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/multijuego/multijuego/internal/auth/commonpw"
	"github.com/multijuego/multijuego/internal/errcode"
)

// Validation of what accounts are made of.

func validUsername(u string) error {
	if n := utf8.RuneCountInString(u); n < 3 || n > 32 {
		return errcode.Field("username", "Username must be 3 to 32 characters long.")
	}
	for i, r := range u {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || (i > 0 && strings.ContainsRune("_.-", r)))
		if !ok {
			return errcode.Field("username", "Username may use letters, digits and _ . - and must start with a letter or digit.")
		}
	}
	if strings.HasPrefix(strings.ToLower(u), "guest-") {
		return errcode.Field("username", "Usernames starting with guest- are reserved.")
	}
	return nil
}

func normalEmail(e string) (string, error) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", nil
	}
	if len(e) > 254 {
		return "", errcode.Field("email", "Email is too long.")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", errcode.Field("email", "Email is not a valid address.")
	}
	return strings.ToLower(e), nil
}

func (s *Service) validPassword(field, p string) error {
	n := utf8.RuneCountInString(p)
	if n < s.cfg.PasswordMinLength {
		return errcode.Field(field, "Password must be at least %d characters long.", s.cfg.PasswordMinLength)
	}
	if n > s.cfg.PasswordMaxLength {
		return errcode.Field(field, "Password must be at most %d characters long.", s.cfg.PasswordMaxLength)
	}
	if !utf8.ValidString(p) {
		return errcode.Field(field, "Password must be valid UTF-8.")
	}
	if commonpw.Common(p) {
		return errcode.Field(field, "That password is one of the 100,000 most common passwords found in data breaches; choose another.")
	}
	return nil
}

func validDevice(d string) error {
	if len(d) < 10 || len(d) > 128 {
		return errcode.Field("device_id", "Device id must be 10 to 128 characters long.")
	}
	for _, r := range d {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.:", r))) {
			return errcode.Field("device_id", "Device id may use letters, digits and - _ . : only.")
		}
	}
	return nil
}
