package resource

import "context"

type actorKey struct{}

// WithActor returns a context that runs actions on behalf of actor (usually
// the signed-in user). Changes, validations and FromActor filters see it;
// notifications carry it.
func WithActor(ctx context.Context, actor any) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor of ctx, or nil.
func ActorFrom(ctx context.Context) any {
	return ctx.Value(actorKey{})
}
