package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/examples/accounts/users"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
)

// Post is a blog post, written by a user of the accounts example.
type Post struct {
	ID        uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	AuthorID  uuid.UUID `bun:",type:uuid,notnull"`
	Title     string    `bun:",notnull" validate:"required,max=200"`
	Body      string    `bun:",notnull" validate:"required,max=20000"`
	CreatedAt time.Time `bun:",notnull" kiln:"readonly,default:now"`

	Author   *users.User `bun:"-"` // the relationship author, when loaded
	Comments []*Comment  `bun:"-"` // the relationship comments, when loaded
}

// Comment is a user's comment on a post.
type Comment struct {
	ID        uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	PostID    uuid.UUID `bun:",type:uuid,notnull"`
	AuthorID  uuid.UUID `bun:",type:uuid,notnull"`
	Body      string    `bun:",notnull" validate:"required,max=2000"`
	CreatedAt time.Time `bun:",notnull" kiln:"readonly,default:now"`

	Author *users.User `bun:"-"` // the relationship author, when loaded
}

// The actions' inputs. The author is not one of them: it is the
// signed-in user the action runs for (resource.WithActor).
type (
	NewPost struct {
		Title string
		Body  string
	}
	NewComment struct {
		PostID uuid.UUID
		Body   string
	}
	ByID struct {
		ID uuid.UUID
	}
)

// errSignedOut fails a write that no signed-in user runs.
var errSignedOut = fmt.Errorf("%w: sign in to write", resource.ErrForbidden)

// The blog's actions, each declared with its input and run through its
// handle.
var (
	publish = resource.DefineCreate[Post, NewPost](resource.Create{
		Name:   "publish",
		Accept: []string{"title", "body"},
		Changes: []resource.Change{resource.Before(func(ctx context.Context, cs *resource.Changeset[Post]) error {
			author, ok := cs.Actor().(*users.User)
			if !ok {
				return errSignedOut
			}
			cs.Record().AuthorID = author.ID
			return nil
		})},
	})
	// newest reads the posts a page at a time, newest first.
	newest = resource.DefineRead[Post, resource.NoInput](resource.Read{
		Name:     "newest",
		Sort:     []resource.Sort{resource.Desc("created_at")},
		PageSize: resource.PageSize{Default: 10, Max: 50},
	})
	show = resource.DefineGet[Post, ByID](resource.Read{Name: "show", GetBy: []string{"id"}})

	comment = resource.DefineCreate[Comment, NewComment](resource.Create{
		Name:   "comment",
		Accept: []string{"post_id", "body"},
		Changes: []resource.Change{resource.Before(func(ctx context.Context, cs *resource.Changeset[Comment]) error {
			author, ok := cs.Actor().(*users.User)
			if !ok {
				return errSignedOut
			}
			cs.Record().AuthorID = author.ID
			return nil
		})},
	})
)

// declare declares the blog's resources: posts, by the accounts example's
// users, and their comments, which feed pushes to the post's open pages.
func declare(authors *resource.Resource[users.User], feed resource.Notifier) (*resource.Resource[Post], *resource.Resource[Comment]) {
	posts := resource.New[Post]("post",
		resource.Relationships{
			resource.BelongsTo{Name: "author", Destination: authors},
			// Comments refer back to posts, so posts name them by name.
			resource.HasMany{Name: "comments", Destination: resource.Named("comment"),
				Sort: []resource.Sort{resource.Asc("created_at")}},
		},
		resource.Actions{publish, newest, show},
	)
	comments := resource.New[Comment]("comment",
		resource.Relationships{
			resource.BelongsTo{Name: "post", Destination: posts},
			resource.BelongsTo{Name: "author", Destination: authors},
		},
		resource.Actions{comment},
		resource.Notifiers(feed),
	)
	return posts, comments
}

// commentFeed is the comments' notifier: once a comment is committed, it
// is pushed over the live endpoint, on every node, to the sockets of its
// post's open pages. The endpoint is the one attached to the built domain
// (Domain.Attach); until then, a comment has nowhere to go.
type commentFeed struct{}

var _ resource.NotifierAttacher = commentFeed{}

// Notify implements resource.Notifier, before Attach.
func (commentFeed) Notify(context.Context, resource.Notification) error {
	return errors.New("blog: the comment feed has no live endpoint; attach it to the domain (Domain.Attach)")
}

// Attach implements resource.NotifierAttacher: the feed pushes over the
// attached live endpoint.
func (commentFeed) Attach(_ *resource.Domain, _ resource.Ref, parts []any) (resource.Notifier, error) {
	for _, p := range parts {
		if ep, ok := p.(*live.Endpoint); ok {
			return attachedFeed{ep}, nil
		}
	}
	return nil, errors.New("blog: no live endpoint attached; the comment feed pushes over it")
}

// attachedFeed is the comment feed once its endpoint is attached.
type attachedFeed struct{ endpoint *live.Endpoint }

// feedComment is the payload of a "comment" event.
type feedComment struct {
	ID     uuid.UUID `json:"id"`
	Author string    `json:"author"`
	Body   string    `json:"body"`
}

// Notify implements resource.Notifier.
func (f attachedFeed) Notify(ctx context.Context, n resource.Notification) error {
	c, ok := resource.RecordAs[Comment](n)
	if !ok || n.ActionType != resource.CreateAction {
		return nil
	}
	author, ok := n.Actor.(*users.User) // comment ran for it
	if !ok {
		return errors.New("blog: a comment without its author")
	}
	return f.endpoint.Broadcast(ctx, postTopic(c.PostID), "comment", feedComment{ID: c.ID, Author: author.Email, Body: c.Body})
}

// postTopic is the live topic of a post's open pages.
func postTopic(id uuid.UUID) string { return "post:" + id.String() }
