// Package clock reads the clock that orders waiters' arrivals.
package clock
