// Package perm decides whether a directory can be trusted with slot files
// and gives the files of a group-shared pool their group. Its errors say
// what is wrong and the fix, if any; the protocol above wraps them.
package perm
