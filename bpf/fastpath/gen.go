package fastpath

//go:generate go tool bpf2go -cc clang -target bpfel -output-stem fastpath fastpath c/fastpath.c -- -O2 -g -Wall -Werror -I/usr/include
