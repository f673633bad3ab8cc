package bunlayer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

type renewal struct {
	ID                       int64  `bun:",pk,autoincrement"`
	CustomerAccountID        string `bun:",notnull"`
	ScheduledForTimezoneName string `bun:",notnull"`
	ScheduledForTimezoneKind string `bun:",notnull"`
	Title                    string `bun:",notnull"`
	CustomerName             string `bun:",notnull"`
	CreatedAt                time.Time
}

// TestIndexNames: Build refuses two indexes (or an index and a table)
// that the database would take for one, since the second CREATE INDEX IF
// NOT EXISTS would create nothing and a later DROP INDEX remove the
// first; an index's Name settles it.
func TestIndexNames(t *testing.T) {
	long := []string{"customer_account_id", "scheduled_for_timezone_name"}
	longer := []string{"customer_account_id", "scheduled_for_timezone_kind"}
	for _, tc := range []struct {
		name     string
		sections []resource.Section
		want     string // "" for a build that passes
	}{
		{"an index named as an identity's index", []resource.Section{
			resource.Identities{{Name: "title_created_at", Keys: []string{"customer_name"}}},
			resource.Indexes{{Keys: []string{"title", "created_at"}}}},
			`index (title, created_at) of renewal is named "subscription_renewals_title_created_at_idx", as the index of identity "title_created_at" of renewal is`},
		{"two names PostgreSQL cuts to one", []resource.Section{resource.Indexes{{Keys: long}, {Keys: longer}}},
			`index (customer_account_id, scheduled_for_timezone_kind) of renewal is named "subscription_renewals_customer_account_id_scheduled_for_timezone_kind_idx" and index (customer_account_id, scheduled_for_timezone_name) of renewal "subscription_renewals_customer_account_id_scheduled_for_timezone_name_idx": PostgreSQL keeps the first 63 bytes of a name, the same`},
		{"an index named as a table", []resource.Section{resource.Indexes{{Keys: []string{"title"}, Name: "subscription_renewals"}}},
			`index (title) of renewal is named "subscription_renewals", as the table of renewal is`},
		{"two names PostgreSQL cuts to one where a character begins", []resource.Section{resource.Indexes{
			{Keys: []string{"title"}, Name: strings.Repeat("x", 62) + "é_title"},
			{Keys: []string{"customer_name"}, Name: strings.Repeat("x", 62) + "ā_customer"}}},
			`PostgreSQL keeps the first 63 bytes of a name, the same`},
		{"a name PostgreSQL keeps as another", []resource.Section{resource.Indexes{
			{Keys: []string{"title"}, Name: strings.Repeat("x", 62) + "é"},
			{Keys: []string{"customer_name"}, Name: strings.Repeat("x", 62)}}},
			`PostgreSQL keeps the first 63 bytes of a name, the same`},
		{"names apart only in case", []resource.Section{resource.Indexes{
			{Keys: []string{"title"}},
			{Keys: []string{"customer_name"}, Name: "Subscription_Renewals_Title_Idx"}}},
			`the same to SQLite, which ignores case`},
		{"an index named as the primary key's", []resource.Section{resource.Indexes{{Keys: []string{"title"}, Name: "subscription_renewals_pkey"}}},
			`index (title) of renewal is named "subscription_renewals_pkey", as the primary key index of renewal is`},
		{"named apart", []resource.Section{resource.Indexes{{Keys: long}, {Keys: longer, Name: "subscription_renewals_by_account_kind"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer := testdb.SQLite(t)
			_, err := resource.NewDomain("billing", resource.New[renewal]("renewal",
				append([]resource.Section{resource.Table("subscription_renewals")}, tc.sections...)...)).Build(t.Context(), layer)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("build: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("build: %v\nwant an error with %s", err, tc.want)
			case tc.want == "":
				sql, err := layer.MigrationSQL()
				if err != nil || !strings.Contains(sql, `CREATE INDEX IF NOT EXISTS "subscription_renewals_by_account_kind" ON "subscription_renewals"`) {
					t.Errorf("MigrationSQL = %v\n%s", err, sql)
				}
			}
		})
	}
}

// TestRefusedRegisterKeepsSchema: a build that the names refuse leaves the
// layer with what an earlier build registered.
func TestRefusedRegisterKeepsSchema(t *testing.T) {
	layer := testdb.SQLite(t)
	build := func(sections ...resource.Section) error {
		_, err := resource.NewDomain("billing", resource.New[renewal]("renewal", sections...)).Build(t.Context(), layer)
		return err
	}
	if err := build(resource.Indexes{{Keys: []string{"title"}}}); err != nil {
		t.Fatal(err)
	}
	if err := build(resource.Indexes{{Keys: []string{"title"}, Name: "renewals"}}); err == nil {
		t.Fatal("an index named as its table was built")
	}
	sql, err := layer.MigrationSQL()
	if err != nil || !strings.Contains(sql, `CREATE INDEX IF NOT EXISTS "renewals_title_idx" ON "renewals" ("title")`) {
		t.Errorf("MigrationSQL after the refused build = %v\n%s", err, sql)
	}
}

// TestDeclaredIndexServesForeignKey: an index that begins with a
// belongs-to relationship's attribute stands in for the index kiln would
// give that attribute, in the migration SQL and in the snapshot alike.
func TestDeclaredIndexServesForeignKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   []string
		fkeyIx bool
	}{
		{"no declared index", nil, true},
		{"one that begins with the attribute", []string{"item_id", "stars"}, false},
		{"one that does not", []string{"stars", "item_id"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sections := []resource.Section{reviewOfItem}
			if tc.keys != nil {
				sections = append(sections, resource.Indexes{{Keys: tc.keys}})
			}
			layer := testdb.SQLite(t)
			if _, err := resource.NewDomain("shop", resource.New[review]("review", sections...), resource.New[itemV1NoShop]("item")).Build(t.Context(), layer); err != nil {
				t.Fatal(err)
			}
			sql, err := layer.MigrationSQL()
			if err != nil {
				t.Fatal(err)
			}
			snap, err := layer.Snapshot("sqlite")
			if err != nil {
				t.Fatal(err)
			}
			inSnapshot := false
			for _, table := range snap.Tables {
				for _, ix := range table.Indexes {
					inSnapshot = inSnapshot || ix.Name == "reviews_item_fkey_idx"
				}
			}
			if got := strings.Contains(sql, `"reviews_item_fkey_idx"`); got != tc.fkeyIx || inSnapshot != tc.fkeyIx {
				t.Errorf("reviews_item_fkey_idx in the migration %v, in the snapshot %v; want %v\n%s", got, inSnapshot, tc.fkeyIx, sql)
			}
		})
	}
}
