package bpf

//go:generate go tool bpf2go -cc clang -target bpfel -output-stem pgproxy pgproxy c/pgproxy.c -- -O2 -g -Wall -Werror -I/usr/include
