// Package wire frames the PostgreSQL protocol on top of pgproto3: bounded
// reading of startup packets, a frame reader that hands out whole messages or
// streams them through without decoding, and builders for the few messages the
// proxy writes itself (errors, key data). Messages are decoded with
// github.com/jackc/pgx/v5/pgproto3; this package only finds their boundaries.
package wire
