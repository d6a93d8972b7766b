package kv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DynamoOptions configures NewDynamo.
type DynamoOptions struct {
	// Endpoint overrides AWS's endpoint, e.g. "http://127.0.0.1:4567" for a
	// local DynamoDB; the credentials are then static dummies. Empty: AWS,
	// with the default credential chain.
	Endpoint string
	// Table is the table's name (required).
	Table string
	// Region (empty: the environment's, else "us-east-1").
	Region string
	// Timeout bounds each operation, retries included (0: DefaultTimeout).
	Timeout time.Duration
	// CreateTable creates the table when it is missing (on-demand billing),
	// waits until it is ACTIVE and enables DynamoDB's TTL on exp.
	CreateTable bool
}

// Dynamo is the Store on DynamoDB.
//
// The table's partition key is pk (S). An item is {pk, v (B) or n (N),
// ver (N), exp (N), exp_ms (N)}: v holds a value written by Put, n one
// written by Incr (so Incr can ADD to it atomically; Get returns it in
// decimal); exp is the expiry in Unix seconds, rounded up, for DynamoDB's
// TTL deletion, and exp_ms the exact one in milliseconds; both are absent
// when the item does not expire. DynamoDB deletes expired items only
// eventually, so every read filters on exp_ms and every conditional write
// treats an item with exp_ms <= now as absent. "now" is this node's clock.
//
// A key that is valid UTF-8 and does not start with "~b64:" is stored as
// is; any other key as "~b64:" followed by its base64 form (at most 1,373
// bytes, within DynamoDB's 2,048-byte key limit).
//
// Get, PutIfAbsent, CompareAndSet and Delete take one round trip (a failed
// CompareAndSet a second one, to tell ErrNotFound from ErrVersionMismatch,
// on emulators that do not return the old item). Put and
// Incr try the write for a live item first (one round trip) and, when the
// condition finds none, the write for a new item (a second); a failed
// condition on a race is retried a few times.
type Dynamo struct {
	c       *dynamodb.Client
	table   string
	timeout time.Duration
}

var _ Store = (*Dynamo)(nil)

// maxAttempts bounds the optimistic loops of Put and Incr; only writers
// racing on one key that is expiring, being deleted or recreated can
// exhaust it.
const maxAttempts = 8

// errContention is returned when maxAttempts did not suffice.
var errContention = errors.New("kv: dynamodb: too much contention on the key")

// Attribute names, always passed through ExpressionAttributeNames so that
// DynamoDB's reserved words never matter.
var dynamoNames = map[string]string{
	"#pk": "pk", "#v": "v", "#n": "n", "#ver": "ver", "#exp": "exp", "#expms": "exp_ms",
}

const (
	condLive   = "(attribute_not_exists(#expms) OR #expms > :now)"
	condAbsent = "(attribute_not_exists(#pk) OR #expms <= :now)"
)

// NewDynamo connects to DynamoDB and checks that the table exists,
// creating it first when opts.CreateTable is set. ctx bounds the setup.
func NewDynamo(ctx context.Context, opts DynamoOptions) (*Dynamo, error) {
	if opts.Table == "" {
		return nil, errors.New("kv: NewDynamo needs a Table")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Endpoint != "" {
		load = append(load, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("dummy", "dummy", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("kv: dynamodb config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
	})
	d := &Dynamo{c: c, table: opts.Table, timeout: opts.Timeout}
	if err := d.setup(ctx, opts.CreateTable); err != nil {
		return nil, err
	}
	return d, nil
}

// setup makes sure the table exists and is ACTIVE.
func (d *Dynamo) setup(ctx context.Context, create bool) error {
	desc, err := d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing) && create:
		_, err = d.c.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &d.table,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // inUse: another node created it
			return fmt.Errorf("kv: dynamodb create table %s: %w", d.table, err)
		}
	case err != nil:
		return fmt.Errorf("kv: dynamodb table %s: %w", d.table, err)
	case desc.Table.TableStatus == types.TableStatusActive:
		return d.enableTTL(ctx, create)
	}
	for {
		desc, err := d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
		if err != nil {
			return fmt.Errorf("kv: dynamodb table %s: %w", d.table, err)
		}
		if desc.Table.TableStatus == types.TableStatusActive {
			return d.enableTTL(ctx, create)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kv: dynamodb table %s not active: %w", d.table, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// enableTTL turns on DynamoDB's deletion of expired items (by exp) when
// the store manages the table. Emulators without the operation (dynalite)
// are fine: reads filter expired items anyway.
func (d *Dynamo) enableTTL(ctx context.Context, create bool) error {
	if !create {
		return nil
	}
	ttl, err := d.c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &d.table})
	if err == nil && ttl.TimeToLiveDescription != nil {
		switch ttl.TimeToLiveDescription.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			return nil
		}
	}
	_, err = d.c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &d.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("exp"), Enabled: aws.Bool(true)},
	})
	var api smithy.APIError
	if err != nil && errors.As(err, &api) {
		code, msg := api.ErrorCode(), strings.ToLower(api.ErrorMessage())
		if code == "UnknownOperationException" || code == "NotImplemented" ||
			strings.Contains(msg, "not implemented") || strings.Contains(msg, "already enabled") {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("kv: dynamodb enable ttl on %s: %w", d.table, err)
	}
	return nil
}

// dynamoKey maps a binary-safe key to an S attribute, injectively.
func dynamoKey(key string) map[string]types.AttributeValue {
	const tag = "~b64:"
	if !utf8.ValidString(key) || strings.HasPrefix(key, tag) {
		key = tag + base64.StdEncoding.EncodeToString([]byte(key))
	}
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}}
}

// namesOf returns the attribute names the expressions use: DynamoDB
// rejects unused ones.
func namesOf(exprs ...string) map[string]string {
	names := map[string]string{}
	for _, e := range exprs {
		for i := strings.IndexByte(e, '#'); i >= 0; i = strings.IndexByte(e, '#') {
			j := i + 1
			for j < len(e) && e[j] >= 'a' && e[j] <= 'z' {
				j++
			}
			if name, ok := dynamoNames[e[i:j]]; ok {
				names[e[i:j]] = name
			}
			e = e[j:]
		}
	}
	return names
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// clock is the time of one attempt of an operation.
type clock struct{ nowMs int64 }

func newClock() clock { return clock{time.Now().UnixMilli()} }

// expiry returns exp_ms for ttl (0: none).
func (c clock) expiry(ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	return c.nowMs + ttlMillis(ttl)
}

// expUpdate is the part of an update expression that sets (expMs > 0) or
// clears the expiry attributes, with the values it needs.
func expUpdate(expMs int64, vals map[string]types.AttributeValue) (set, remove string) {
	if expMs == 0 {
		return "", "#exp, #expms"
	}
	vals[":exp"] = num(expSeconds(expMs))
	vals[":expms"] = num(expMs)
	return "#exp = :exp, #expms = :expms", ""
}

// expSeconds rounds up, so that DynamoDB never deletes an item early.
func expSeconds(expMs int64) int64 { return (expMs + 999) / 1000 }

// freshItem is a whole new item at version 1.
func freshItem(key string, value []byte, counter *int64, expMs int64) map[string]types.AttributeValue {
	it := dynamoKey(key)
	if counter != nil {
		it["n"] = num(*counter)
	} else {
		it["v"] = &types.AttributeValueMemberB{Value: value}
	}
	it["ver"] = num(1)
	if expMs != 0 {
		it["exp"] = num(expSeconds(expMs))
		it["exp_ms"] = num(expMs)
	}
	return it
}

// rawItem is a decoded DynamoDB item.
type rawItem struct {
	value     []byte
	counter   int64
	isCounter bool // n, not v
	ver       uint64
	expMs     int64 // 0: no expiry
}

// decode reads an item; ok is false when it is missing or expired.
func decode(av map[string]types.AttributeValue, nowMs int64) (it rawItem, ok bool, err error) {
	if len(av) == 0 {
		return rawItem{}, false, nil
	}
	intAttr := func(name string) (int64, bool, error) {
		a, present := av[name]
		if !present {
			return 0, false, nil
		}
		n, isN := a.(*types.AttributeValueMemberN)
		if !isN {
			return 0, true, fmt.Errorf("kv: dynamodb: attribute %s is not a number", name)
		}
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return 0, true, fmt.Errorf("kv: dynamodb: attribute %s: %w", name, err)
		}
		return i, true, nil
	}
	if it.expMs, _, err = intAttr("exp_ms"); err != nil {
		return rawItem{}, false, err
	}
	if it.expMs != 0 && it.expMs <= nowMs {
		return rawItem{}, false, nil
	}
	ver, _, err := intAttr("ver")
	if err != nil {
		return rawItem{}, false, err
	}
	it.ver = uint64(ver)
	if it.counter, it.isCounter, err = intAttr("n"); err != nil {
		return rawItem{}, false, err
	}
	if !it.isCounter {
		b, isB := av["v"].(*types.AttributeValueMemberB)
		if !isB {
			return rawItem{}, false, errors.New("kv: dynamodb: item has neither v (B) nor n (N)")
		}
		it.value = b.Value
		if it.value == nil {
			it.value = []byte{}
		}
	}
	return it, true, nil
}

func (it rawItem) item() Item {
	out := Item{Value: it.value, Version: it.ver}
	if it.isCounter {
		out.Value = strconv.AppendInt(nil, it.counter, 10)
	}
	if it.expMs != 0 {
		out.ExpiresAt = time.UnixMilli(it.expMs)
	}
	return out
}

// conditionFailed reports whether err is a failed condition and returns
// the item it was checked against when DynamoDB sent it back
// (ReturnValuesOnConditionCheckFailure; emulators may not).
func conditionFailed(err error) (old map[string]types.AttributeValue, failed, known bool) {
	var cf *types.ConditionalCheckFailedException
	if !errors.As(err, &cf) {
		return nil, false, false
	}
	return cf.Item, true, cf.Item != nil
}

func (d *Dynamo) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.timeout)
}

// getRaw reads an item with a strongly consistent read.
func (d *Dynamo) getRaw(ctx context.Context, key string, nowMs int64) (rawItem, bool, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &d.table, Key: dynamoKey(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return rawItem{}, false, err
	}
	return decode(out.Item, nowMs)
}

// Get implements Store.
func (d *Dynamo) Get(ctx context.Context, key string) (Item, error) {
	if err := checkKey(key); err != nil {
		return Item{}, err
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	it, ok, err := d.getRaw(ctx, key, newClock().nowMs)
	if err != nil {
		return Item{}, fmt.Errorf("kv: dynamodb get: %w", err)
	}
	if !ok {
		return Item{}, ErrNotFound
	}
	return it.item(), nil
}

// putFresh writes a new item at version 1 if no live item exists. It
// returns the condition failure as an error.
func (d *Dynamo) putFresh(ctx context.Context, item map[string]types.AttributeValue, c clock) error {
	_, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &d.table,
		Item:                                item,
		ConditionExpression:                 aws.String(condAbsent),
		ExpressionAttributeNames:            namesOf(condAbsent),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(c.nowMs)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return err
}

// update runs an UpdateItem on key with names restricted to those used.
func (d *Dynamo) update(ctx context.Context, key, update, cond string, vals map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &d.table,
		Key:                                 dynamoKey(key),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            namesOf(update, cond),
		ExpressionAttributeValues:           vals,
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// writeExpr builds the update expression that stores value with the expiry
// and the given version assignment.
func writeExpr(value []byte, expMs int64, verSet string, vals map[string]types.AttributeValue) string {
	vals[":v"] = &types.AttributeValueMemberB{Value: value}
	set, remove := expUpdate(expMs, vals)
	expr := "SET #v = :v, " + verSet
	if set != "" {
		expr += ", " + set
	}
	expr += " REMOVE #n"
	if remove != "" {
		expr += ", " + remove
	}
	return expr
}

func attrUint(av map[string]types.AttributeValue, name string) (uint64, error) {
	n, ok := av[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("kv: dynamodb: no %s in the reply", name)
	}
	return strconv.ParseUint(n.Value, 10, 64)
}

// Put implements Store.
func (d *Dynamo) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	for range maxAttempts {
		c := newClock()
		vals := map[string]types.AttributeValue{":now": num(c.nowMs), ":one": num(1)}
		expr := writeExpr(value, c.expiry(ttl), "#ver = #ver + :one", vals)
		attrs, err := d.update(ctx, key, expr, "attribute_exists(#pk) AND "+condLive, vals)
		if err == nil {
			return attrUint(attrs, "ver")
		}
		if _, failed, _ := conditionFailed(err); !failed {
			return 0, fmt.Errorf("kv: dynamodb put: %w", err)
		}
		err = d.putFresh(ctx, freshItem(key, value, nil, c.expiry(ttl)), c)
		if err == nil {
			return 1, nil
		}
		if _, failed, _ := conditionFailed(err); !failed {
			return 0, fmt.Errorf("kv: dynamodb put: %w", err)
		}
	}
	return 0, errContention
}

// PutIfAbsent implements Store.
func (d *Dynamo) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	c := newClock()
	err := d.putFresh(ctx, freshItem(key, value, nil, c.expiry(ttl)), c)
	if _, failed, _ := conditionFailed(err); failed {
		return 0, ErrExists
	}
	if err != nil {
		return 0, fmt.Errorf("kv: dynamodb put if absent: %w", err)
	}
	return 1, nil
}

// CompareAndSet implements Store.
func (d *Dynamo) CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	if expect == 0 || expect == math.MaxUint64 {
		// No item has version 0; MaxUint64 cannot be incremented.
		return 0, d.casMiss(ctx, key, nil, false)
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	c := newClock()
	vals := map[string]types.AttributeValue{
		":now":    num(c.nowMs),
		":expect": &types.AttributeValueMemberN{Value: strconv.FormatUint(expect, 10)},
		":next":   &types.AttributeValueMemberN{Value: strconv.FormatUint(expect+1, 10)},
	}
	expr := writeExpr(value, c.expiry(ttl), "#ver = :next", vals)
	_, err := d.update(ctx, key, expr, "#ver = :expect AND "+condLive, vals)
	if err == nil {
		return expect + 1, nil
	}
	old, failed, known := conditionFailed(err)
	if !failed {
		return 0, fmt.Errorf("kv: dynamodb compare and set: %w", err)
	}
	return 0, d.casMiss(ctx, key, old, known)
}

// casMiss tells ErrNotFound from ErrVersionMismatch after a failed
// CompareAndSet, reading the item when DynamoDB did not return it.
func (d *Dynamo) casMiss(ctx context.Context, key string, old map[string]types.AttributeValue, known bool) error {
	nowMs := newClock().nowMs
	var live bool
	var err error
	if known {
		_, live, err = decode(old, nowMs)
	} else {
		ctx, cancel := d.ctx(ctx)
		defer cancel()
		_, live, err = d.getRaw(ctx, key, nowMs)
	}
	switch {
	case err != nil:
		return fmt.Errorf("kv: dynamodb compare and set: %w", err)
	case !live:
		return ErrNotFound
	}
	return ErrVersionMismatch
}

// Delete implements Store.
func (d *Dynamo) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if _, err := d.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.table, Key: dynamoKey(key)}); err != nil {
		return fmt.Errorf("kv: dynamodb delete: %w", err)
	}
	return nil
}

// Incr implements Store. A live counter is one UpdateItem that ADDs to n
// under a condition that it exists, is live and stays within int64 (atomic
// on the server, so concurrent increments never retry); a missing or
// expired one is a conditional PutItem. A value written by Put that is a
// counter in decimal is converted to n with a version-conditioned update.
func (d *Dynamo) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	wrap := func(err error) error { return fmt.Errorf("kv: dynamodb incr: %w", err) }
	for range maxAttempts {
		c := newClock()
		// A live counter.
		vals := map[string]types.AttributeValue{":now": num(c.nowMs), ":d": num(delta), ":one": num(1)}
		cond := "attribute_exists(#n) AND " + condLive
		switch {
		case delta > 0:
			cond += " AND #n <= :lim"
			vals[":lim"] = num(math.MaxInt64 - delta)
		case delta < 0:
			cond += " AND #n >= :lim"
			vals[":lim"] = num(math.MinInt64 - delta)
		}
		attrs, err := d.update(ctx, key, "ADD #n :d, #ver :one", cond, vals)
		if err == nil {
			n, ok := attrs["n"].(*types.AttributeValueMemberN)
			if !ok {
				return 0, wrap(errors.New("no n in the reply"))
			}
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return 0, wrap(err)
			}
			return v, nil
		}
		old, failed, known := conditionFailed(err)
		if !failed {
			return 0, wrap(err)
		}
		var it rawItem
		var live bool
		if known {
			if it, live, err = decode(old, c.nowMs); err != nil {
				return 0, wrap(err)
			}
		}
		// A missing or expired counter (or one not known to be live).
		if !live {
			err = d.putFresh(ctx, freshItem(key, nil, &delta, c.expiry(ttl)), c)
			if err == nil {
				return delta, nil
			}
			if old, failed, known = conditionFailed(err); !failed {
				return 0, wrap(err)
			}
			if known {
				it, live, err = decode(old, c.nowMs)
			} else {
				it, live, err = d.getRaw(ctx, key, c.nowMs)
			}
			if err != nil {
				return 0, wrap(err)
			}
			if !live {
				continue // it expired or was deleted since
			}
		}
		// A live item on which the update's condition failed.
		n := it.counter
		if !it.isCounter {
			var ok bool
			if n, ok = parseCounter(it.value); !ok {
				return 0, ErrNotCounter
			}
		}
		if addOverflows(n, delta) {
			return 0, ErrOverflow
		}
		if it.isCounter {
			continue // it changed since
		}
		// A counter written by Put: store it as n.
		vals = map[string]types.AttributeValue{
			":now": num(c.nowMs), ":n": num(n + delta),
			":ver":  &types.AttributeValueMemberN{Value: strconv.FormatUint(it.ver, 10)},
			":next": &types.AttributeValueMemberN{Value: strconv.FormatUint(it.ver+1, 10)},
		}
		_, err = d.update(ctx, key, "SET #n = :n, #ver = :next REMOVE #v", "#ver = :ver AND attribute_exists(#v) AND "+condLive, vals)
		if err == nil {
			return n + delta, nil
		}
		if _, failed, _ := conditionFailed(err); !failed {
			return 0, wrap(err)
		}
	}
	return 0, errContention
}

// Close implements Store. It does nothing: the SDK's client holds no
// resources that need releasing.
func (d *Dynamo) Close() error { return nil }
