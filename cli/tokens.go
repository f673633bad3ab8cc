package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

func (app App) revokeCommand(logger *slog.Logger) *cobra.Command {
	var jti, subject, user string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke tokens (their live sessions close too)",
		Long: `Revoke one token by --jti, every token of a --subject, or every token of
the --user with that identity. Each revocation notifies the token
revocation notifier, which closes the live sessions through the pub/sub
(KILN_PUBSUB_URL) at once, or at the servers' next sweep without one.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			given := 0
			for _, s := range []string{jti, subject, user} {
				if s != "" {
					given++
				}
			}
			if given != 1 {
				return usage("give exactly one of --jti, --subject or --user")
			}
			return app.with(cmd, logger, func(ctx context.Context, rt *Runtime) error {
				out := cmd.OutOrStdout()
				if jti != "" {
					row, err := rt.Tokens.Get(ctx, jti, "")
					switch {
					case errors.Is(err, resource.ErrNotFound):
						return fmt.Errorf("no unexpired token with jti %q", jti)
					case err != nil:
						return fmt.Errorf("read token %q: %w", jti, err)
					}
					if err := rt.Tokens.RevokeJTI(ctx, jti, row.Subject, revocation.Revoked); err != nil {
						if errors.Is(err, tokenresource.ErrAlreadyRevoked) {
							return fmt.Errorf("token %s is already revoked", jti)
						}
						return err
					}
					fmt.Fprintf(out, "revoked 1 token (%s)\n", jti)
					return nil
				}
				if user != "" {
					s, err := rt.SubjectOf(ctx, user)
					switch {
					case errors.Is(err, resource.ErrNotFound):
						return fmt.Errorf("no user %q", user)
					case err != nil:
						return fmt.Errorf("find user %q: %w", user, err)
					}
					subject = s
				}
				n, err := rt.Tokens.RevokeAllForSubject(ctx, subject, revocation.Revoked, tokenresource.RevokeAllOptions{})
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "revoked %d tokens of %s\n", n, subject)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&jti, "jti", "", "the jti of one token")
	cmd.Flags().StringVar(&subject, "subject", "", "a token subject, user?id=…")
	cmd.Flags().StringVar(&user, "user", "", "the identity (email) of a user")
	return cmd
}

// expungeBatch is how many expired rows tokens expunge removes per
// statement.
const expungeBatch = 1000

func (app App) expungeCommand(logger *slog.Logger) *cobra.Command {
	return &cobra.Command{
		Use:   "expunge",
		Short: "Remove expired tokens (with a progress bar when there are many)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.with(cmd, logger, func(ctx context.Context, rt *Runtime) error {
				n, err := Expunge(ctx, rt.Tokens, func(total int) func(int) {
					if total <= expungeBatch {
						return func(int) {}
					}
					bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
						progressbar.OptionSetDescription("expunging"), progressbar.OptionShowCount())
					return func(done int) { _ = bar.Add(done) }
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "expunged %d expired tokens\n", n)
				return nil
			})
		},
	}
}

// Expunge removes every row of the token store that expired before now, in
// batches of 1,000, each one statement that notifies every row (reason
// expired). progress is told the total first, and returns the func told
// each batch's count.
func Expunge(ctx context.Context, store *tokenresource.Store, progress func(total int) func(done int)) (int, error) {
	now := time.Now().UTC()
	jtis, err := store.ExpiredJTIs(ctx, now)
	if err != nil {
		return 0, err
	}
	step := progress(len(jtis))
	total := 0
	for start := 0; start < len(jtis); start += expungeBatch {
		n, err := store.ExpungeJTIs(ctx, jtis[start:min(start+expungeBatch, len(jtis))], now)
		if err != nil {
			return total, err
		}
		total += n
		step(n)
	}
	return total, nil
}
