// Command pack makes the embedded list of package commonpw from a list of
// passwords, one a line (README.md in the parent folder says which):
//
//	go run ./internal/auth/commonpw/pack < list.txt > internal/auth/commonpw/top100k.fc.gz
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/multijuego/multijuego/internal/auth/commonpw"
)

func main() {
	w := bufio.NewWriter(os.Stdout)
	err := commonpw.Pack(os.Stdin, w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}
