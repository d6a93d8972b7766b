package store_test

import (
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, storetest.SQLite)
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, storetest.Postgres)
}

// The two migration sets must move together: same versions, same names,
// same tables and indexes created.
func TestMigrationsInLockstep(t *testing.T) {
	lite, err := store.Migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := store.Migrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Version != pg[i].Version || lite[i].Name != pg[i].Name {
			t.Fatalf("migration %d: sqlite %04d_%s, postgres %04d_%s", i, lite[i].Version, lite[i].Name, pg[i].Version, pg[i].Name)
		}
		if a, b := objects(lite[i].SQL), objects(pg[i].SQL); a != b {
			t.Errorf("migration %04d creates different objects:\nsqlite:   %s\npostgres: %s", lite[i].Version, a, b)
		}
	}
}

// objects lists "CREATE ... name" lines and column names, ignoring types.
func objects(sql string) string {
	var out []string
	for _, line := range strings.Split(sql, "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		if len(f) == 0 || strings.HasPrefix(f[0], "--") {
			continue
		}
		if f[0] == "CREATE" || f[0] == ")" || f[0] == ");" {
			out = append(out, strings.Join(f, " "))
			continue
		}
		out = append(out, f[0]) // a column name
	}
	return strings.Join(out, " | ")
}

func TestSQLiteVault(t *testing.T) {
	storetest.RunVault(t, func(t testing.TB) *store.Vault { return storetest.Vault(t, "") })
}

func TestPostgresVault(t *testing.T) {
	storetest.RunVault(t, func(t testing.TB) *store.Vault { return storetest.Vault(t, storetest.PostgresURL(t)) })
}
