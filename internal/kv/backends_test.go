package kv_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/kv/kvtest"
	"github.com/multijuego/multijuego/internal/redistest"
)

var ctx = context.Background()

func TestMemory(t *testing.T) {
	t.Parallel()
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return kv.NewMemory(kv.MemoryOptions{})
	})
}

// redisClient connects to the shared test Redis; the client is closed when
// the test ends.
func redisClient(t *testing.T) *redis.Client {
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// openRedis returns a store under a fresh prefix whose keys are deleted
// when the test ends.
func openRedis(t *testing.T, c redis.UniversalClient) (*kv.Redis, string) {
	prefix := redistest.Prefix(t)
	s, err := kv.NewRedis(kv.RedisOptions{Client: c, Prefix: prefix, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("deleting the test's keys: %v", err)
				return
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("deleting the test's keys: %v", err)
		}
	})
	return s, prefix
}

func TestRedis(t *testing.T) {
	t.Parallel()
	c := redisClient(t)
	t.Run("Conformance", func(t *testing.T) {
		t.Parallel()
		kvtest.Run(t, func(t *testing.T) kv.Store {
			s, _ := openRedis(t, c)
			return s
		})
	})
	t.Run("Layout", func(t *testing.T) {
		t.Parallel()
		s, prefix := openRedis(t, c)
		if _, err := s.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		h, err := c.HGetAll(ctx, prefix+"k").Result()
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := strconv.ParseInt(h["exp"], 10, 64)
		if h["v"] != "v" || h["ver"] != "1" || len(h) != 3 {
			t.Fatalf("hash: got %v, want v, ver and exp", h)
		}
		if at := c.PExpireTime(ctx, prefix+"k").Val(); at.Milliseconds() != exp {
			t.Fatalf("key expiry: got %d ms, want exp %d ms", at.Milliseconds(), exp)
		}
		if _, err := s.Put(ctx, "k", []byte("w"), 0); err != nil {
			t.Fatal(err)
		}
		h = c.HGetAll(ctx, prefix+"k").Val()
		if _, ok := h["exp"]; ok || c.PTTL(ctx, prefix+"k").Val() != -1 {
			t.Fatalf("after Put without ttl: got hash %v, PTTL %v; want no exp, no expiry", h, c.PTTL(ctx, prefix+"k").Val())
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		s, err := kv.NewRedis(kv.RedisOptions{Client: c, Prefix: redistest.Prefix(t), Timeout: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "k", []byte("v"), 0); err == nil {
			t.Fatal("Put with a 1ns timeout: got nil error, want a timeout")
		}
	})
	t.Run("NoClient", func(t *testing.T) {
		if _, err := kv.NewRedis(kv.RedisOptions{}); err == nil {
			t.Fatal("NewRedis without a client: got nil error, want one")
		}
	})
}

// TestRedisScriptCacheFlushed: the scripts are loaded again after SCRIPT
// FLUSH (on a private server, as the flush would disturb other tests).
func TestRedisScriptCacheFlushed(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	s, err := kv.NewRedis(kv.RedisOptions{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if ver, err := s.Put(ctx, "k", []byte("v"), 0); err != nil || ver != uint64(i) {
			t.Fatalf("Put after SCRIPT FLUSH: got %d, %v; want %d, nil", ver, err, i)
		}
	}
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// openDynamo returns a store on a new table of the dynalite at endpoint.
func openDynamo(t *testing.T, endpoint string) (*kv.Dynamo, string) {
	table := "kv-" + randomHex()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := kv.NewDynamo(sctx, kv.DynamoOptions{Endpoint: endpoint, Table: table, Timeout: 10 * time.Second, CreateTable: true})
	if err != nil {
		t.Fatalf("NewDynamo: %v", err)
	}
	return s, table
}

// rawDynamo is a client to look at and write items behind the store.
func rawDynamo(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("dummy", "dummy", ""),
	})
}

func TestDynamo(t *testing.T) {
	t.Parallel()
	endpoint := kvtest.Dynalite(t)
	t.Run("Conformance", func(t *testing.T) {
		t.Parallel()
		kvtest.Run(t, func(t *testing.T) kv.Store {
			s, _ := openDynamo(t, endpoint)
			return s
		})
	})
	t.Run("Layout", func(t *testing.T) {
		t.Parallel()
		s, table := openDynamo(t, endpoint)
		raw := rawDynamo(endpoint)
		before := time.Now().UnixMilli()
		if _, err := s.Put(ctx, "k", []byte("v"), 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UnixMilli()
		out, err := raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "k"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		n := func(name string) int64 {
			a, ok := out.Item[name].(*types.AttributeValueMemberN)
			if !ok {
				t.Fatalf("attribute %s: got %#v, want a number", name, out.Item[name])
			}
			v, _ := strconv.ParseInt(a.Value, 10, 64)
			return v
		}
		expMs := n("exp_ms")
		if expMs < before+1500 || expMs > after+1500 {
			t.Fatalf("exp_ms: got %d, want between %d and %d", expMs, before+1500, after+1500)
		}
		if exp := n("exp"); exp != (expMs+999)/1000 {
			t.Fatalf("exp: got %d, want exp_ms/1000 rounded up, %d", exp, (expMs+999)/1000)
		}
		if v, ok := out.Item["v"].(*types.AttributeValueMemberB); !ok || string(v.Value) != "v" || n("ver") != 1 {
			t.Fatalf("item: got %#v, want v \"v\" and ver 1", out.Item)
		}
	})
	t.Run("ExpiredNotDeleted", func(t *testing.T) {
		t.Parallel()
		s, table := openDynamo(t, endpoint)
		raw := rawDynamo(endpoint)
		past := time.Now().Add(-time.Minute).UnixMilli()
		put := func(key string, attrs map[string]types.AttributeValue) {
			attrs["pk"] = &types.AttributeValueMemberS{Value: key}
			attrs["ver"] = &types.AttributeValueMemberN{Value: "7"}
			attrs["exp_ms"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(past, 10)}
			attrs["exp"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(past/1000+1, 10)}
			if _, err := raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: attrs}); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{"get", "put", "pia", "cas"} {
			put(k, map[string]types.AttributeValue{"v": &types.AttributeValueMemberB{Value: []byte("old")}})
		}
		put("incr", map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "40"}})
		if _, err := s.Get(ctx, "get"); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("Get of an expired item: got %v, want ErrNotFound", err)
		}
		if ver, err := s.Put(ctx, "put", []byte("new"), 0); err != nil || ver != 1 {
			t.Fatalf("Put on an expired item: got %d, %v; want 1, nil", ver, err)
		}
		if ver, err := s.PutIfAbsent(ctx, "pia", []byte("new"), 0); err != nil || ver != 1 {
			t.Fatalf("PutIfAbsent on an expired item: got %d, %v; want 1, nil", ver, err)
		}
		if _, err := s.CompareAndSet(ctx, "cas", []byte("new"), 0, 7); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("CompareAndSet on an expired item: got %v, want ErrNotFound", err)
		}
		if n, err := s.Incr(ctx, "incr", 2, 0); err != nil || n != 2 {
			t.Fatalf("Incr on an expired counter: got %d, %v; want 2, nil", n, err)
		}
		for _, k := range []string{"put", "pia"} {
			if it, err := s.Get(ctx, k); err != nil || string(it.Value) != "new" || it.Version != 1 || !it.ExpiresAt.IsZero() {
				t.Fatalf("Get(%s): got %+v, %v; want \"new\" v1 without expiry", k, it, err)
			}
		}
	})
	t.Run("Setup", func(t *testing.T) {
		t.Parallel()
		_, table := openDynamo(t, endpoint)
		// Opening an existing table, with or without CreateTable.
		for _, create := range []bool{true, false} {
			if _, err := kv.NewDynamo(ctx, kv.DynamoOptions{Endpoint: endpoint, Table: table, CreateTable: create}); err != nil {
				t.Fatalf("NewDynamo on an existing table (CreateTable %v): got %v, want nil", create, err)
			}
		}
		if _, err := kv.NewDynamo(ctx, kv.DynamoOptions{Endpoint: endpoint, Table: "kv-missing-" + randomHex()}); err == nil {
			t.Fatal("NewDynamo on a missing table without CreateTable: got nil error, want one")
		}
		if _, err := kv.NewDynamo(ctx, kv.DynamoOptions{Endpoint: endpoint}); err == nil {
			t.Fatal("NewDynamo without a table: got nil error, want one")
		}
	})
}
