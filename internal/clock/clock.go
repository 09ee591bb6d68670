// Package clock reads the clock that orders waiters' arrivals across
// processes.
package clock
