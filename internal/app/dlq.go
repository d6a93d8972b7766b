package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/multijuego/multijuego/internal/persist"
)

// dlq is `multijuego dlq list|show SEQ|replay SEQ|--all|purge`: the
// operator's view of the dead-letter queue. It talks to the queue at
// nats_url: an embedded queue belongs to its server process (start that
// server with --events-listen HOST:PORT and pass --nats-url nats://HOST:PORT
// and the server's --data-dir: the operator's credentials are read from
// data_dir/nats/users.json, opened with the server's key provider; a
// listener with events.listen_tls takes tls:// and events.tls.*). For an
// external NATS, the events.* credential settings name the operator's.
func dlq(ctx context.Context, cfg Config, sub string, args []string, in io.Reader, out io.Writer) error {
	if cfg.NATSURL == "" {
		return errors.New("dlq needs the queue's address: --nats-url nats://HOST:PORT (for the embedded queue, start the server with --events-listen 127.0.0.1:4223 and use --nats-url nats://127.0.0.1:4223)")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	bus, err := operatorBus(ctx, cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	q := persist.NewDLQ(bus)
	seqArg := func() (uint64, error) {
		if len(args) != 1 {
			return 0, fmt.Errorf("usage: multijuego dlq %s SEQ", sub)
		}
		n, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("SEQ must be a dead letter's number (see 'multijuego dlq list'), got %q", args[0])
		}
		return n, nil
	}
	switch sub {
	case "list":
		list, err := q.List(ctx, 1000)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tMATCH\tDELIVERIES\tERROR")
		for _, d := range list {
			e := d.Error
			if len(e) > 80 {
				e = e[:77] + "..."
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Type, d.MatchID, d.Deliveries, e)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d dead letters\n", len(list))
		return nil
	case "show":
		n, err := seqArg()
		if err != nil {
			return err
		}
		d, err := q.Get(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "seq: %d\ntime: %s\nsubject: %s\nevent id: %s\ntype: %s\nmatch id: %s\ndeliveries: %d\nerror: %s\npayload:\n%s\n",
			d.Seq, d.Time.UTC().Format(time.RFC3339Nano), d.Subject, d.EventID, d.Type, d.MatchID, d.Deliveries, d.Error, d.Payload)
		return nil
	case "replay":
		if len(args) == 1 && args[0] == "--all" {
			n, err := q.ReplayAll(ctx)
			fmt.Fprintf(out, "replayed %d dead letters\n", n)
			return err
		}
		n, err := seqArg()
		if err != nil {
			return err
		}
		if err := q.Replay(ctx, n); err != nil {
			return err
		}
		fmt.Fprintf(out, "replayed dead letter %d: it is back in the events stream (writing it twice is harmless)\n", n)
		return nil
	case "purge":
		yes := len(args) == 1 && (args[0] == "--yes" || args[0] == "-y")
		if !yes {
			list, err := q.List(ctx, 1000)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "delete all dead letters (%d listed, at most 1000 shown by list)? type 'purge' to confirm: ", len(list))
			line, _ := bufio.NewReader(in).ReadString('\n')
			if strings.TrimSpace(line) != "purge" {
				return errors.New("not confirmed; nothing deleted")
			}
		}
		n, err := q.Purge(ctx)
		fmt.Fprintf(out, "purged %d dead letters\n", n)
		return err
	}
	return fmt.Errorf("unknown command 'dlq %s' (try list, show SEQ, replay SEQ|--all, purge)", sub)
}
