package ratelimit

import "net/netip"

// ParseIPList exposes the list parser to the fuzz target.
func ParseIPList(data []byte) (func(netip.Addr) bool, error) {
	s, err := parseIPList(data)
	if err != nil {
		return nil, err
	}
	return s.contains, nil
}
