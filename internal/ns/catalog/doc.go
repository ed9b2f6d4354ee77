// Package catalog holds the Notification Server's rules: what a valid
// package manifest is, who a package is assigned to, how tokens and
// enrollments work, and what configuration each Package Server receives. It
// declares the Store it needs; package sqlstore implements it.
package catalog
