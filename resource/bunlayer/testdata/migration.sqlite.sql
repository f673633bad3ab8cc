CREATE TABLE IF NOT EXISTS "users" ("id" uuid NOT NULL, "email" VARCHAR NOT NULL, "hashed_password" VARCHAR NOT NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX IF NOT EXISTS "users_unique_email_idx" ON "users" ("email");
CREATE TABLE IF NOT EXISTS "tokens" ("jti" VARCHAR NOT NULL, "subject" VARCHAR NOT NULL, "expires_at" TIMESTAMP NOT NULL, "purpose" VARCHAR NOT NULL, "extra_data" json, "created_at" TIMESTAMP NOT NULL, "updated_at" TIMESTAMP NOT NULL, PRIMARY KEY ("jti"));
CREATE TABLE IF NOT EXISTS "items" ("id" uuid NOT NULL, "sku" VARCHAR NOT NULL, "shop" VARCHAR NOT NULL, "slug" VARCHAR NOT NULL, "title" VARCHAR NOT NULL, "price" INTEGER NOT NULL, "stock" INTEGER NOT NULL, "weight" DOUBLE PRECISION, "ratio" REAL, "available" BOOLEAN NOT NULL, "parent" uuid, "note" VARCHAR, "picture" BLOB, "attributes" json, "shelf_life" INTEGER, "published_at" TIMESTAMP, "created_at" TIMESTAMP NOT NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX IF NOT EXISTS "items_unique_sku_idx" ON "items" ("sku");
CREATE UNIQUE INDEX IF NOT EXISTS "items_unique_shop_slug_idx" ON "items" ("shop", "slug");
CREATE UNIQUE INDEX IF NOT EXISTS "items_title_per_shop_idx" ON "items" ("shop", "title");
CREATE TABLE IF NOT EXISTS "counters" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "name" VARCHAR NOT NULL, "n" INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS "counters_unique_name_idx" ON "counters" ("name");
