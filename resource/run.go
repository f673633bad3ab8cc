package resource

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"

	"github.com/go-playground/validator/v10"
)

// Input is an action's input: accepted attributes and arguments by name.
// Values are converted to the declared types (see Argument and Attribute);
// strings are parsed, so form values can be passed as they come.
type Input map[string]any

// RunResult is what Domain.Run returns: the result of an action run by
// name, for dynamic and config-driven use. Typed handles return *T, []*T or
// a Result[T] instead.
type RunResult struct {
	// Record is the written record (*T) of a create, update or destroy of
	// one record, or the record of a read with Get.
	Record any
	// Records are the records (*[]*T's elements as []*T) of a read or a
	// bulk action.
	Records any
	// Value is what a generic action's Run returned.
	Value any
	// Page describes the page of a read run with Paginate.
	Page *PageInfo
	// Metadata is what the action's changes set with SetMetadata (a
	// token an authentication strategy issued, for example).
	Metadata map[string]any
	// NotifyErrors are the notifiers' failures after commit. The action
	// itself succeeded.
	NotifyErrors []error
}

// RunOption adjusts one run of an action.
type RunOption func(*runOptions)

type runOptions struct {
	record any
	filter Filter
	bulk   bool
	sort   []Sort
	limit  int
	offset int
	page   *PageRequest
	load   []string
}

// OnRecord runs an update or destroy action on one record (*T).
func OnRecord(rec any) RunOption { return func(o *runOptions) { o.record = rec } }

// Where runs an update or destroy action in bulk on every record f matches,
// or narrows a read.
func Where(f Filter) RunOption {
	return func(o *runOptions) {
		o.bulk = true
		if o.filter == nil {
			o.filter = f
		} else {
			o.filter = And{o.filter, f}
		}
	}
}

// SortBy orders a read, after the action's own sort.
func SortBy(s ...Sort) RunOption { return func(o *runOptions) { o.sort = append(o.sort, s...) } }

// Limit limits a read (replacing the action's limit).
func Limit(n int) RunOption { return func(o *runOptions) { o.limit = n } }

// Offset skips records of a read.
func Offset(n int) RunOption { return func(o *runOptions) { o.offset = n } }

type txKey struct{}

// txState is the transaction an action runs in, with the notifications
// waiting for its commit.
type txState struct {
	domain     *Domain
	tx         Tx
	queue      []pending
	savepoints int
	// unprotected is the first failure of a write run without a
	// savepoint (see bareKey); the transaction must not commit after it.
	unprotected error
}

// bareKey marks a ctx in a transaction a generic action began for itself,
// outside any savepoint: a write nested there needs no savepoint of its
// own, since its failure fails the generic action, which rolls the whole
// transaction back. A generic action that goes on after such a failure
// has its transaction rolled back with an error (see inTx).
type bareKey struct{}

type pending struct {
	n         Notification
	notifiers []Notifier
}

// InTransaction runs fn in one transaction of the domain: every action fn
// runs with the ctx it is given shares it, and their notifications are sent
// after it commits. When ctx is already in a transaction of this domain, fn
// joins it, within a savepoint: if fn fails, what it wrote is undone and
// the transaction goes on, so a caller may handle the error.
func (d *Domain) InTransaction(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := d.inTx(context.WithValue(ctx, bareKey{}, nil), true, func(ctx context.Context, _ *txState) error { return fn(ctx) })
	return err
}

// inTransaction reports whether ctx is in a transaction of d.
func (d *Domain) inTransaction(ctx context.Context) bool {
	st, ok := ctx.Value(txKey{}).(*txState)
	return ok && st.domain == d
}

// inTx runs fn in the ctx's transaction or a new one, commits a new one and
// delivers its notifications. It returns the notifiers' errors.
//
// Nested in a transaction, fn runs within a savepoint when savepoint is
// true: for writes and explicit InTransaction groups, not for generic
// actions, which only orchestrate writes that have their own. A write
// nested directly in a transaction that a generic action began for
// itself runs without one: if it fails, the generic action fails and the
// whole transaction is rolled back, so a sign-out or a log out everywhere
// is BEGIN, its statements, COMMIT. Should the generic action go on after
// such a failure instead, nothing is committed: it fails with
// ErrUnprotectedFailure (wrap a write whose failure it tolerates in
// InTransaction, which gives it a savepoint).
func (d *Domain) inTx(ctx context.Context, savepoint bool, fn func(ctx context.Context, st *txState) error) ([]error, error) {
	if st, ok := ctx.Value(txKey{}).(*txState); ok && st.domain == d {
		if !savepoint {
			return nil, fn(ctx, st)
		}
		if ctx.Value(bareKey{}) == st {
			queued := len(st.queue)
			err := fn(ctx, st)
			if err != nil {
				st.queue = st.queue[:queued]
				if st.unprotected == nil {
					st.unprotected = err
				}
			}
			return nil, err
		}
		return nil, d.nested(ctx, st, fn)
	}
	tx, err := d.layer.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("kiln/resource: begin: %w", err)
	}
	st := &txState{domain: d, tx: tx}
	returned := false
	defer func() {
		if !returned {
			// fn panicked (or called runtime.Goexit): roll back, so that the
			// transaction and its connection are not left open, and let the
			// panic go on.
			_ = tx.Rollback()
		}
	}()
	txCtx := context.WithValue(ctx, txKey{}, st)
	if !savepoint {
		txCtx = context.WithValue(txCtx, bareKey{}, st)
	}
	err = fn(txCtx, st)
	returned = true
	if err == nil && st.unprotected != nil {
		err = fmt.Errorf("%w: %w", ErrUnprotectedFailure, st.unprotected)
	}
	if err != nil {
		if rbErr := tx.Rollback(); rbErr != nil {
			d.logger.ErrorContext(ctx, "kiln: rollback failed", "domain", d.name, "err", rbErr)
		}
		return nil, err
	}
	queued := len(st.queue)
	err = d.precommit(txCtx, st.queue)
	if err == nil && (len(st.queue) != queued || st.unprotected != nil) {
		// Its notifiers were told of what the transaction was to commit;
		// a write of its own would commit unannounced.
		err = errors.New("kiln/resource: a PrecommitNotifier wrote in the transaction it was told of; it must only read")
	}
	if err != nil {
		if rbErr := tx.Rollback(); rbErr != nil {
			d.logger.ErrorContext(ctx, "kiln: rollback failed", "domain", d.name, "err", rbErr)
		}
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("kiln/resource: commit: %w", err)
	}
	return d.deliver(ctx, st.queue), nil
}

// precommit tells each PrecommitNotifier of the notifications it is to get
// once the transaction commits.
func (d *Domain) precommit(ctx context.Context, queue []pending) error {
	var groups []group[PrecommitNotifier]
	for _, p := range queue {
		for _, nf := range p.notifiers {
			if pn, ok := nf.(PrecommitNotifier); ok {
				groups = addToGroup(groups, pn, p.n)
			}
		}
	}
	for _, g := range groups {
		if err := safePrecommit(ctx, g.notifier, g.ns); err != nil {
			return fmt.Errorf("kiln/resource: before commit, %T: %w", g.notifier, err)
		}
	}
	return nil
}

func safePrecommit(ctx context.Context, pn PrecommitNotifier, ns []Notification) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return pn.Precommit(ctx, ns)
}

// nested runs fn inside the ctx's transaction, within a savepoint when the
// data layer has them: if fn fails, what it wrote and queued is undone while
// the transaction goes on, so a caller that handles the error (a revoke that
// tolerates ErrAlreadyRevoked) commits nothing half-written, and a
// PostgreSQL transaction stays usable after a failed statement.
func (d *Domain) nested(ctx context.Context, st *txState, fn func(ctx context.Context, st *txState) error) error {
	sp, ok := st.tx.(Savepointer)
	if !ok {
		return fn(ctx, st)
	}
	st.savepoints++
	name := fmt.Sprintf("kiln_sp_%d", st.savepoints)
	if err := sp.Savepoint(ctx, name); err != nil {
		return fmt.Errorf("kiln/resource: savepoint: %w", err)
	}
	queued := len(st.queue)
	// Inside the savepoint, nested writes take savepoints of their own.
	if err := fn(context.WithValue(ctx, bareKey{}, nil), st); err != nil {
		st.queue = st.queue[:queued]
		if rbErr := sp.RollbackTo(ctx, name); rbErr != nil {
			return errors.Join(err, fmt.Errorf("kiln/resource: rollback to savepoint: %w", rbErr))
		}
		return err
	}
	if err := sp.Release(ctx, name); err != nil {
		return fmt.Errorf("kiln/resource: release savepoint: %w", err)
	}
	return nil
}

// deliver sends committed notifications in the order they were queued;
// a BatchNotifier gets all of its own in one NotifyBatch, once the others
// have been sent theirs.
func (d *Domain) deliver(ctx context.Context, queue []pending) []error {
	var errs []error
	var batches []group[BatchNotifier]
	for _, p := range queue {
		for _, nf := range p.notifiers {
			if bn, ok := nf.(BatchNotifier); ok {
				batches = addToGroup(batches, bn, p.n)
				continue
			}
			if err := safeNotify(ctx, nf, p.n); err != nil {
				errs = append(errs, d.notifyFailed(ctx, nf, p.n, err))
			}
		}
	}
	for _, b := range batches {
		if err := safeNotifyBatch(ctx, b.notifier, b.ns); err != nil {
			errs = append(errs, d.notifyFailed(ctx, b.notifier, b.ns[0], err))
		}
	}
	return errs
}

// group is the notifications of one transaction for one notifier.
type group[N Notifier] struct {
	notifier N
	ns       []Notification
}

// addToGroup appends n to nf's group, found by identity. A notifier of an
// incomparable type cannot be told apart from another: it gets a group
// per notification.
func addToGroup[N Notifier](groups []group[N], nf N, n Notification) []group[N] {
	if reflect.TypeOf(nf).Comparable() {
		for i := range groups {
			if reflect.TypeOf(groups[i].notifier) == reflect.TypeOf(nf) && any(groups[i].notifier) == any(nf) {
				groups[i].ns = append(groups[i].ns, n)
				return groups
			}
		}
	}
	return append(groups, group[N]{notifier: nf, ns: []Notification{n}})
}

func (d *Domain) notifyFailed(ctx context.Context, nf Notifier, n Notification, err error) error {
	ne := &NotifyError{Notification: n, Err: err}
	d.logger.ErrorContext(ctx, "kiln: notifier failed", "domain", d.name, "resource", n.Resource,
		"action", n.Action, "notifier", fmt.Sprintf("%T", nf), "err", err)
	if d.onNotifyError != nil {
		d.onNotifyError(ctx, ne)
	}
	return ne
}

func safeNotifyBatch(ctx context.Context, bn BatchNotifier, ns []Notification) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return bn.NotifyBatch(ctx, ns)
}

func safeNotify(ctx context.Context, nf Notifier, n Notification) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return nf.Notify(ctx, n)
}

// Run runs the action named action of resource r with input. Updates and
// destroys need OnRecord (one record) or Where (bulk); a read returns one
// page of its records with Paginate. The action runs in one transaction
// (the ctx's, when it has one of this domain), and its notifications are
// sent after commit.
func (d *Domain) Run(ctx context.Context, r Ref, action string, in Input, opts ...RunOption) (*RunResult, error) {
	br, ba, err := d.lookup(r, action)
	if err != nil {
		return nil, err
	}
	return d.run(ctx, br, ba, in, opts...)
}

// run is Run of the action ba of br, once looked up.
func (d *Domain) run(ctx context.Context, br *builtResource, ba *builtAction, in Input, opts ...RunOption) (*RunResult, error) {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	if ba.Type == ReadAction {
		return d.read(ctx, br, ba, in, &o)
	}
	if len(o.load) > 0 {
		return nil, fmt.Errorf("kiln/resource: %s.%s: Load applies to reads, and this is %s action", br.decl.Name, ba.Name, ba.Type.Article())
	}
	res := &RunResult{}
	cs := &AnyChangeset{domain: d, resource: br, action: ba, ctx: ctx}
	if ba.OutsideTransaction && !d.inTransaction(ctx) {
		if err := d.generic(ctx, cs, in, res); err != nil {
			return nil, err
		}
		res.Metadata = cs.meta
		return res, nil
	}
	// One-record writes are cast, validated and prepared before their
	// transaction begins, so that neither bad input nor slow preparation
	// holds a write lock.
	var err error
	switch {
	case ba.Type == CreateAction:
		err = d.prepareCreate(ctx, cs, in)
	case (ba.Type == UpdateAction || ba.Type == DestroyAction) && o.record != nil && !o.bulk:
		err = d.prepareOne(ctx, cs, in, o.record)
	}
	if err != nil {
		return nil, err
	}
	notifyErrs, err := d.inTx(ctx, ba.Type != GenericAction, func(ctx context.Context, st *txState) error {
		cs.ctx = ctx
		var queue []pending
		var err error
		switch ba.Type {
		case CreateAction:
			queue, err = d.create(ctx, st, cs, res)
		case UpdateAction, DestroyAction:
			switch {
			case o.record != nil && o.bulk:
				return fmt.Errorf("kiln/resource: %s.%s: give OnRecord or Where, not both", br.decl.Name, ba.Name)
			case o.record != nil:
				queue, err = d.writeOne(ctx, st, cs, res)
			case o.bulk:
				queue, err = d.writeAll(ctx, st, cs, in, o.filter, res)
			default:
				return fmt.Errorf("kiln/resource: %s.%s: %s needs OnRecord(record) or Where(filter)", br.decl.Name, ba.Name, ba.Type)
			}
		case GenericAction:
			err = d.generic(ctx, cs, in, res)
		}
		if err != nil {
			return err
		}
		res.Metadata = cs.meta
		st.queue = append(st.queue, queue...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.NotifyErrors = notifyErrs
	return res, nil
}

func (d *Domain) lookup(r Ref, action string) (*builtResource, *builtAction, error) {
	if r == nil {
		return nil, nil, fmt.Errorf("%w: nil", ErrUnknownResource)
	}
	if r.Declaration() == nil {
		return nil, nil, fmt.Errorf("%w: %q is a name (resource.Named); run actions on the resource itself", ErrUnknownResource, r.Name())
	}
	return d.lookupName(r.Name(), r.Declaration().Type, action)
}

// lookupName finds the action of the resource of that name and record
// type.
func (d *Domain) lookupName(name string, t reflect.Type, action string) (*builtResource, *builtAction, error) {
	br := d.resources[name]
	if br == nil || br.decl.Type != t {
		return nil, nil, fmt.Errorf("%w: %q is not in domain %q", ErrUnknownResource, name, d.name)
	}
	ba := br.actions[action]
	if ba == nil {
		names := make([]string, 0, len(br.actions))
		for n := range br.actions {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, nil, fmt.Errorf("%w: %s has no action %q%s", ErrUnknownAction, br.decl.Name, action, suggestion(action, names))
	}
	return br, ba, nil
}

// castInput sets accepted attributes on cs.record and arguments on cs.args,
// collecting one error per bad field.
func (d *Domain) castInput(cs *AnyChangeset, in Input) []error {
	var errs []error
	cs.args = map[string]any{}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := in[k]
		if arg, ok := cs.action.args[k]; ok {
			cv, err := convert(v, arg.Type)
			if err != nil {
				errs = append(errs, cs.Invalid(k, err.Error()))
				continue
			}
			cs.args[k] = cv.Interface()
			continue
		}
		if attr, ok := cs.action.accept[k]; ok && cs.record.IsValid() {
			cv, err := convert(v, attr.Type)
			if err != nil {
				errs = append(errs, cs.Invalid(k, err.Error()))
				continue
			}
			cs.record.Elem().FieldByIndex(attr.Index).Set(cv)
			cs.markChanged(k)
			continue
		}
		if cs.resource.decl.Attribute(k) != nil {
			errs = append(errs, cs.Invalid(k, "is not accepted by this action"))
			continue
		}
		errs = append(errs, cs.Invalid(k, "unknown input"+suggestion(k, cs.inputNames())))
	}
	for name, arg := range cs.action.args {
		if _, given := cs.args[name]; !given && arg.Default != nil {
			cv, err := convert(arg.Default, arg.Type)
			if err != nil {
				errs = append(errs, cs.Invalid(name, "default "+err.Error()))
				continue
			}
			cs.args[name] = cv.Interface()
		}
	}
	return errs
}

func (cs *AnyChangeset) inputNames() []string {
	var names []string
	for n := range cs.action.accept {
		names = append(names, n)
	}
	for n := range cs.action.args {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validateInput checks the input in one pass and returns every problem
// with it at once, joined, one *ValidationError per field problem:
//
//  1. what castInput found (castErrs): values that do not convert to
//     their field's type, inputs the action does not know;
//  2. required attributes the input leaves empty: on a create, those the
//     action accepts and neither the input nor a default fills; on an
//     update, those the input empties;
//  3. validator rules: the `validate` tags of the accepted attributes
//     (all of them on a create, those the input sets on an update) and
//     each argument's Validate rules (given or not, so required works);
//  4. the declared validations, in order.
//
// A field without a usable value (it did not convert, or it is missing)
// keeps that one error: the later steps skip it, a declared validation of
// that Field does not run, and an error another validation returns on it
// is dropped.
func (d *Domain) validateInput(ctx context.Context, cs *AnyChangeset, castErrs []error) error {
	errs := castErrs
	unusable := map[string]bool{}
	for _, err := range castErrs {
		var ve *ValidationError
		if errors.As(err, &ve) {
			unusable[ve.Field] = true
		}
	}
	if cs.record.IsValid() {
		for _, a := range cs.resource.decl.Attributes {
			if _, accepted := cs.action.accept[a.Name]; !accepted || unusable[a.Name] {
				continue
			}
			// A create fills attributes left zero from their defaults,
			// after its changes; an update only checks what it sets.
			checked := cs.Changing(a.Name)
			if cs.action.Type == CreateAction {
				checked = a.Default == nil
			}
			if checked && cs.missing(a) {
				errs = append(errs, cs.Invalid(a.Name, "is required"))
				unusable[a.Name] = true
			}
		}
	}
	if cs.record.IsValid() && len(cs.action.accept) > 0 {
		var fields []string
		for name := range cs.action.accept {
			if (cs.action.Type == CreateAction || cs.Changing(name)) && !unusable[name] {
				fields = append(fields, cs.resource.validPath[name])
			}
		}
		if len(fields) > 0 {
			sort.Strings(fields)
			err := d.validate.StructPartialCtx(ctx, cs.record.Interface(), fields...)
			errs = append(errs, d.fieldErrors(cs, err, "", unusable)...)
		}
	}
	argNames := make([]string, 0, len(cs.action.args))
	for name := range cs.action.args {
		argNames = append(argNames, name)
	}
	sort.Strings(argNames)
	for _, name := range argNames {
		arg := cs.action.args[name]
		if arg.Validate == "" || unusable[name] {
			continue
		}
		v, ok := cs.args[name]
		if !ok {
			v = reflect.New(arg.Type).Elem().Interface()
		}
		err := d.validate.VarCtx(ctx, v, arg.Validate)
		errs = append(errs, d.fieldErrors(cs, err, name, unusable)...)
	}
	// The validate tags of a typed input's fields that set attributes.
	for _, r := range cs.action.inputRules {
		if !cs.Changing(r.name) || unusable[r.name] {
			continue
		}
		err := d.validate.VarCtx(ctx, cs.Get(r.name), r.rules)
		errs = append(errs, d.fieldErrors(cs, err, r.name, unusable)...)
	}
	for _, val := range cs.action.Validations {
		if val.Field != "" && unusable[val.Field] {
			continue
		}
		err := val.Check(ctx, cs)
		if err == nil {
			continue
		}
		for _, e := range splitJoined(err) {
			var ve *ValidationError
			switch {
			case !errors.As(e, &ve):
				errs = append(errs, cs.Invalid(val.Field, e.Error()))
			case !unusable[ve.Field]:
				errs = append(errs, e)
			}
		}
	}
	return errors.Join(errs...)
}

// splitJoined returns the errors err joins, or err alone.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// fieldErrors turns validator errors into ValidationErrors on field, or,
// when field is empty, on the attribute each names. A field that fails
// its required rule is marked missing.
func (d *Domain) fieldErrors(cs *AnyChangeset, err error, field string, missing map[string]bool) []error {
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return []error{cs.Invalid(field, err.Error())}
	}
	out := make([]error, 0, len(ves))
	for _, fe := range ves {
		name := field
		if name == "" {
			name = fe.Field()
			for attr, path := range cs.resource.validPath {
				if cs.resource.decl.Type.Name()+"."+path == fe.StructNamespace() || path == fe.StructNamespace() {
					name = attr
					break
				}
			}
		}
		if fe.Tag() == "required" {
			missing[name] = true
		}
		out = append(out, cs.Invalid(name, ruleMessage(fe)))
	}
	return out
}

func ruleMessage(fe validator.FieldError) string {
	p := fe.Param()
	isString := fe.Kind() == reflect.String
	isList := fe.Kind() == reflect.Slice || fe.Kind() == reflect.Array || fe.Kind() == reflect.Map
	items := " items"
	if p == "1" {
		items = " item"
	}
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be a valid email address"
	case "url", "http_url":
		return "must be a valid URL"
	case "uuid", "uuid4":
		return "must be a valid UUID"
	case "min", "gte":
		if isString {
			return "must be at least " + p + " characters long"
		}
		if isList {
			return "must have at least " + p + items
		}
		return "must be at least " + p
	case "max", "lte":
		if isString {
			return "must be at most " + p + " characters long"
		}
		if isList {
			return "must have at most " + p + items
		}
		return "must be at most " + p
	case "len":
		if isString {
			return "must be exactly " + p + " characters long"
		}
		if isList {
			return "must have exactly " + p + items
		}
		return "must have length " + p
	case "gt":
		return "must be greater than " + p
	case "lt":
		return "must be less than " + p
	case "oneof":
		return "must be one of: " + p
	}
	if p != "" {
		return fmt.Sprintf("failed the %s=%s rule", fe.Tag(), p)
	}
	return fmt.Sprintf("failed the %s rule", fe.Tag())
}

func (d *Domain) runPrepare(ctx context.Context, cs *AnyChangeset) error {
	for _, c := range cs.action.changes {
		if c.Prepare != nil {
			if err := c.Prepare(ctx, cs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Domain) runBefore(ctx context.Context, cs *AnyChangeset) error {
	for _, c := range cs.action.changes {
		if c.Before != nil {
			if err := c.Before(ctx, cs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Domain) runAfter(ctx context.Context, cs *AnyChangeset, rec any) error {
	for _, c := range cs.action.changes {
		if c.After != nil {
			if err := c.After(ctx, cs, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Domain) notification(ctx context.Context, cs *AnyChangeset, rec any) pending {
	n := Notification{
		Resource:   cs.resource.decl.Name,
		Action:     cs.action.Name,
		ActionType: cs.action.Type,
		Record:     rec,
		Changed:    slices.Clone(cs.changed),
		Actor:      ActorFrom(ctx),
		Domain:     d,
	}
	if cs.meta != nil {
		n.Metadata = make(map[string]any, len(cs.meta))
		for k, v := range cs.meta {
			n.Metadata[k] = v
		}
	}
	return pending{n: n, notifiers: d.notifiersOf(cs.resource, cs.action)}
}

// prepareCreate casts and validates a create's input and runs its
// changes' Prepare, before the transaction.
func (d *Domain) prepareCreate(ctx context.Context, cs *AnyChangeset, in Input) error {
	cs.record = reflect.New(cs.resource.decl.Type)
	if err := d.validateInput(ctx, cs, d.castInput(cs, in)); err != nil {
		return err
	}
	return d.runPrepare(ctx, cs)
}

// prepareOne does the same for a one-record update or destroy of target.
func (d *Domain) prepareOne(ctx context.Context, cs *AnyChangeset, in Input, target any) error {
	tv := reflect.ValueOf(target)
	if tv.Kind() != reflect.Pointer || tv.IsNil() || tv.Elem().Type() != cs.resource.decl.Type {
		return fmt.Errorf("kiln/resource: %s.%s: OnRecord needs a non-nil *%s, not %T", cs.resource.decl.Name, cs.action.Name, cs.resource.decl.Type, target)
	}
	cs.old = target
	cs.record = reflect.New(cs.resource.decl.Type)
	cs.record.Elem().Set(tv.Elem())
	if err := d.validateInput(ctx, cs, d.castInput(cs, in)); err != nil {
		return err
	}
	return d.runPrepare(ctx, cs)
}

func (d *Domain) create(ctx context.Context, st *txState, cs *AnyChangeset, res *RunResult) ([]pending, error) {
	if err := d.runBefore(ctx, cs); err != nil {
		return nil, err
	}
	rec := cs.record.Elem()
	var missing []error
	for _, a := range cs.resource.decl.Attributes {
		f := rec.FieldByIndex(a.Index)
		if isZero(f) && a.Default != nil {
			cv, err := convert(a.Default(), a.Type)
			if err != nil {
				return nil, fmt.Errorf("kiln/resource: %s.%s: default: %w", cs.resource.decl.Name, a.Name, err)
			}
			f.Set(cv)
		}
		if cs.missing(a) {
			missing = append(missing, cs.Invalid(a.Name, "is required"))
		}
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}
	if err := d.checkReferences(ctx, st, cs); err != nil {
		return nil, err
	}
	var opts InsertOptions
	if cs.action.Upsert || cs.action.SkipOnConflict {
		opts = d.upsertOptions(cs)
	}
	if err := st.tx.Insert(ctx, cs.resource.schema, cs.record.Interface(), opts); err != nil {
		return nil, d.writeError(cs, err)
	}
	if err := d.runAfter(ctx, cs, cs.record.Interface()); err != nil {
		return nil, err
	}
	res.Record = cs.record.Interface()
	return []pending{d.notification(ctx, cs, res.Record)}, nil
}

func (d *Domain) upsertOptions(cs *AnyChangeset) InsertOptions {
	opts := InsertOptions{Upsert: cs.action.Upsert, SkipOnConflict: cs.action.SkipOnConflict}
	if id := cs.resource.decl.Identity(cs.action.UpsertIdentity); id != nil {
		opts.ConflictFields = id.Keys
	} else {
		for _, a := range cs.resource.schema.PrimaryKey {
			opts.ConflictFields = append(opts.ConflictFields, a.Name)
		}
	}
	if !opts.Upsert {
		return opts
	}
	opts.UpdateFields = cs.action.UpsertFields
	if len(opts.UpdateFields) == 0 {
		opts.UpdateFields = cs.Changed()
		for _, a := range cs.resource.decl.Attributes {
			if a.UpdateDefault != nil && !slices.Contains(opts.UpdateFields, a.Name) {
				opts.UpdateFields = append(opts.UpdateFields, a.Name)
			}
		}
	}
	return opts
}

// writeError names the identity a conflict violated.
func (d *Domain) writeError(cs *AnyChangeset, err error) error {
	var ce *ConflictError
	if errors.As(err, &ce) {
		out := &ConflictError{Resource: cs.resource.decl.Name, Identity: ce.Identity, Fields: ce.Fields, Err: ce.Err}
		for _, id := range cs.resource.decl.Identities {
			if id.Name == ce.Identity || (ce.Identity == "" && slices.Equal(sortedCopy(id.Keys), sortedCopy(ce.Fields))) {
				out.Identity, out.Fields = id.Name, id.Keys
			}
		}
		if out.Identity == "" && len(cs.resource.schema.PrimaryKey) > 0 {
			var pk []string
			for _, a := range cs.resource.schema.PrimaryKey {
				pk = append(pk, a.Name)
			}
			if slices.Equal(sortedCopy(pk), sortedCopy(ce.Fields)) || ce.Identity == "primary_key" {
				out.Identity, out.Fields = "primary_key", pk
			}
		}
		return out
	}
	var re *ReferenceError
	if errors.As(err, &re) {
		return d.referenceError(cs, re)
	}
	if errors.Is(err, ErrNotFound) {
		return &NotFoundError{Resource: cs.resource.decl.Name, Action: cs.action.Name}
	}
	return fmt.Errorf("kiln/resource: %s.%s: %w", cs.resource.decl.Name, cs.action.Name, err)
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// writeOne updates or destroys one record.
func (d *Domain) writeOne(ctx context.Context, st *txState, cs *AnyChangeset, res *RunResult) ([]pending, error) {
	if err := d.runBefore(ctx, cs); err != nil {
		return nil, err
	}
	rec := cs.record.Interface()
	if cs.action.Type == UpdateAction {
		d.applyUpdateDefaults(cs)
		if err := cs.requiredKept(); err != nil {
			return nil, err
		}
		if err := d.checkReferences(ctx, st, cs); err != nil {
			return nil, err
		}
		if err := st.tx.Update(ctx, cs.resource.schema, rec, cs.changed); err != nil {
			return nil, d.writeError(cs, err)
		}
	} else {
		if err := st.tx.Delete(ctx, cs.resource.schema, rec); err != nil {
			return nil, d.writeError(cs, err)
		}
	}
	if err := d.runAfter(ctx, cs, rec); err != nil {
		return nil, err
	}
	res.Record = rec
	return []pending{d.notification(ctx, cs, rec)}, nil
}

func (d *Domain) applyUpdateDefaults(cs *AnyChangeset) {
	for _, a := range cs.resource.decl.Attributes {
		if a.UpdateDefault != nil && !cs.Changing(a.Name) {
			if cv, err := convert(a.UpdateDefault(), a.Type); err == nil {
				cs.record.Elem().FieldByIndex(a.Index).Set(cv)
				cs.markChanged(a.Name)
			}
		}
	}
}

// writeAll updates or destroys every record f matches, in one statement.
func (d *Domain) writeAll(ctx context.Context, st *txState, cs *AnyChangeset, in Input, f Filter, res *RunResult) ([]pending, error) {
	cs.bulk = true
	cs.filter = f
	cs.record = reflect.New(cs.resource.decl.Type)
	if err := d.validateInput(ctx, cs, d.castInput(cs, in)); err != nil {
		return nil, err
	}
	resolved, err := resolveFilter(ctx, f, cs.args)
	if err != nil {
		return nil, fmt.Errorf("kiln/resource: %s.%s: filter: %w", cs.resource.decl.Name, cs.action.Name, err)
	}
	if err := d.runPrepare(ctx, cs); err != nil {
		return nil, err
	}
	if err := d.runBefore(ctx, cs); err != nil {
		return nil, err
	}
	dest := reflect.New(reflect.SliceOf(reflect.PointerTo(cs.resource.decl.Type)))
	if cs.action.Type == UpdateAction {
		d.applyUpdateDefaults(cs)
		if err := cs.requiredKept(); err != nil {
			return nil, err
		}
		if len(cs.changed) == 0 {
			return nil, cs.Invalid("", "a bulk update must set at least one attribute")
		}
		if err := d.checkReferences(ctx, st, cs); err != nil {
			return nil, err
		}
		set := make(map[string]any, len(cs.changed))
		for _, name := range cs.changed {
			set[name] = cs.record.Elem().FieldByIndex(cs.resource.decl.Attribute(name).Index).Interface()
		}
		err = st.tx.UpdateAll(ctx, cs.resource.schema, resolved, set, dest.Interface())
	} else {
		err = st.tx.DeleteAll(ctx, cs.resource.schema, resolved, dest.Interface())
	}
	if err != nil {
		return nil, d.writeError(cs, err)
	}
	recs := dest.Elem()
	queue := make([]pending, 0, recs.Len())
	for i := 0; i < recs.Len(); i++ {
		rec := recs.Index(i).Interface()
		if err := d.runAfter(ctx, cs, rec); err != nil {
			return nil, err
		}
		queue = append(queue, d.notification(ctx, cs, rec))
	}
	res.Records = recs.Interface()
	return queue, nil
}

func (d *Domain) generic(ctx context.Context, cs *AnyChangeset, in Input, res *RunResult) error {
	if err := d.validateInput(ctx, cs, d.castInput(cs, in)); err != nil {
		return err
	}
	v, err := cs.action.Run(ctx, cs)
	if err != nil {
		return err
	}
	res.Value = v
	return nil
}

// read runs a read action, in the ctx's transaction when there is one.
func (d *Domain) read(ctx context.Context, br *builtResource, ba *builtAction, in Input, o *runOptions) (*RunResult, error) {
	if o.page != nil {
		if err := checkPaged(br, ba, o); err != nil {
			return nil, err
		}
	}
	cs := &AnyChangeset{domain: d, resource: br, action: ba, ctx: ctx}
	if err := d.validateInput(ctx, cs, d.castInput(cs, in)); err != nil {
		return nil, err
	}
	q := &Query{Sort: slices.Clone(ba.Sort), Limit: ba.Limit, Lock: ba.Lock, args: cs.args, cs: cs}
	f, err := resolveFilter(ctx, ba.filter, cs.args)
	if err != nil {
		return nil, fmt.Errorf("kiln/resource: %s.%s: filter: %w", br.decl.Name, ba.Name, err)
	}
	q.Filter = f
	if o.filter != nil {
		extra, err := resolveFilter(ctx, o.filter, cs.args)
		if err != nil {
			return nil, fmt.Errorf("kiln/resource: %s.%s: filter: %w", br.decl.Name, ba.Name, err)
		}
		q.Where(extra)
	}
	q.Sort = append(q.Sort, o.sort...)
	if o.limit > 0 {
		q.Limit = o.limit
	}
	q.Offset = o.offset
	for _, p := range ba.Preparations {
		if err := p.Prepare(ctx, q); err != nil {
			return nil, err
		}
	}
	if err := checkQuery(cs, q); err != nil {
		return nil, err
	}
	plan, err := loadPlan(cs, o.load)
	if err != nil {
		return nil, err
	}
	var querier Querier = d.layer
	if st, ok := ctx.Value(txKey{}).(*txState); ok && st.domain == d {
		querier = st.tx
	}
	if o.page != nil {
		res, err := d.readPage(ctx, cs, q, *o.page, querier)
		if err != nil {
			return nil, err
		}
		if err := load(ctx, querier, br.schema, reflect.ValueOf(res.Records), plan); err != nil {
			return nil, fmt.Errorf("kiln/resource: %s.%s: %w", br.decl.Name, ba.Name, err)
		}
		return res, nil
	}
	if ba.Get && q.Limit == 0 {
		q.Limit = 2
	}
	dest := reflect.New(reflect.SliceOf(reflect.PointerTo(br.decl.Type)))
	if err := querier.Select(ctx, br.schema, q, dest.Interface()); err != nil {
		return nil, fmt.Errorf("kiln/resource: %s.%s: %w", br.decl.Name, ba.Name, err)
	}
	recs := dest.Elem()
	if err := load(ctx, querier, br.schema, recs, plan); err != nil {
		return nil, fmt.Errorf("kiln/resource: %s.%s: %w", br.decl.Name, ba.Name, err)
	}
	res := &RunResult{Records: recs.Interface()}
	if ba.Get {
		switch recs.Len() {
		case 0:
			return nil, &NotFoundError{Resource: br.decl.Name, Action: ba.Name}
		case 1:
			res.Record = recs.Index(0).Interface()
		default:
			return nil, fmt.Errorf("kiln/resource: %s.%s: expected one record, found several; get by a primary key or an identity", br.decl.Name, ba.Name)
		}
	}
	return res, nil
}

// requiredKept refuses an update that empties a required attribute: the
// same rule a create follows, for the attributes the update sets.
func (cs *AnyChangeset) requiredKept() error {
	var missing []error
	for _, name := range cs.changed {
		if a := cs.resource.decl.Attribute(name); cs.missing(a) {
			missing = append(missing, cs.Invalid(name, "is required"))
		}
	}
	return errors.Join(missing...)
}

// missing reports whether the record leaves the required attribute a
// empty: nil or zero, where a bool's false, and a number's 0 that the
// input or a change set, count as values.
func (cs *AnyChangeset) missing(a *Attribute) bool {
	f := cs.record.Elem().FieldByIndex(a.Index)
	return a.Required && !a.AutoIncrement && isZero(f) && f.Kind() != reflect.Bool &&
		!(isNumber(f.Kind()) && cs.Changing(a.Name))
}
