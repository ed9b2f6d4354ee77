// Package wharf holds Wharf's vocabulary: the small value types every part
// shares (package ids, digests, server names, relative paths inside a
// package) and the rules that make a value of them valid. It does no I/O.
package wharf
