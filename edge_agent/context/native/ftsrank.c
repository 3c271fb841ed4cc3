/*
 * ftsrank: BM25 for FTS5 with the document frequencies given by the caller.
 *
 * FTS5's own bm25() counts, on every query, how many rows contain each phrase by
 * walking the phrase's whole posting list, so a query's cost grows with the store
 * whatever it returns. The context store already keeps those counts (cached per word),
 * so this function takes them as arguments and computes, per row, exactly what
 * bm25() computes:
 *
 *     bm25_df(items_fts, w_0, ..., w_{C-1}, df_0, ..., df_{P-1})
 *
 * with one weight per column (C = the table's columns) and one document frequency per
 * phrase of the MATCH expression, in the order the phrases appear in it. Given the
 * counts bm25() would find, the result is the same number bm25() returns (the same
 * formula, k1 = 1.2, b = 0.75, IDF floored at 1e-6, in the same order of operations).
 *
 * Built against the system's sqlite3ext.h (any SQLite 3.20+); it runs inside the SQLite
 * the driver bundles, through the routines table that SQLite hands to the extension.
 */
#include <math.h>
#include <string.h>

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#define BM25_K1 1.2
#define BM25_B 0.75
#define STACK_PHRASES 64

static void bm25_df(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                    int n_val, sqlite3_value **val) {
    int n_col = api->xColumnCount(fts);
    int n_phrase = api->xPhraseCount(fts);
    if (n_val != n_col + n_phrase) {
        char *msg = sqlite3_mprintf(
            "bm25_df: expected %d column weights and %d document frequencies, got %d values",
            n_col, n_phrase, n_val);
        sqlite3_result_error(ctx, msg, -1);
        sqlite3_free(msg);
        return;
    }
    sqlite3_int64 n_row = 0, n_token = 0;
    int rc = api->xRowCount(fts, &n_row);
    if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fts, -1, &n_token);
    int n_inst = 0;
    if (rc == SQLITE_OK) rc = api->xInstCount(fts, &n_inst);
    int row_tokens = 0;
    if (rc == SQLITE_OK) rc = api->xColumnSize(fts, -1, &row_tokens);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double stack_freq[STACK_PHRASES];
    double *freq = stack_freq;
    if (n_phrase > STACK_PHRASES) {
        freq = sqlite3_malloc64(sizeof(double) * (sqlite3_uint64)n_phrase);
        if (freq == NULL) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
    }
    memset(freq, 0, sizeof(double) * (size_t)n_phrase);
    for (int i = 0; i < n_inst; i++) {
        int phrase, col, off;
        rc = api->xInst(fts, i, &phrase, &col, &off);
        if (rc != SQLITE_OK) break;
        if (phrase >= 0 && phrase < n_phrase && col >= 0 && col < n_col) {
            freq[phrase] += sqlite3_value_double(val[col]);
        }
    }
    if (rc == SQLITE_OK) {
        double avgdl = (double)n_token / (double)(n_row > 0 ? n_row : 1);
        double k = BM25_K1 * (1 - BM25_B + BM25_B * (double)row_tokens / avgdl);
        double score = 0.0;
        for (int i = 0; i < n_phrase; i++) {
            double hits = sqlite3_value_double(val[n_col + i]);
            double idf = log((n_row - hits + 0.5) / (hits + 0.5));
            if (idf <= 0.0) idf = 1e-6;
            score += idf * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + k));
        }
        sqlite3_result_double(ctx, -1.0 * score);
    } else {
        sqlite3_result_error_code(ctx, rc);
    }
    if (freq != stack_freq) sqlite3_free(freq);
}

static int fts5_api_of(sqlite3 *db, fts5_api **api) {
    sqlite3_stmt *stmt = NULL;
    *api = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_pointer(stmt, 1, (void *)api, "fts5_api_ptr", NULL);
    sqlite3_step(stmt);
    rc = sqlite3_finalize(stmt);
    if (rc == SQLITE_OK && *api == NULL) rc = SQLITE_ERROR;
    return rc;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_ftsrank_init(sqlite3 *db, char **err, const sqlite3_api_routines *routines) {
    SQLITE_EXTENSION_INIT2(routines);
    fts5_api *api = NULL;
    int rc = fts5_api_of(db, &api);
    if (rc != SQLITE_OK || api->iVersion < 2) {
        *err = sqlite3_mprintf("ftsrank: this SQLite has no FTS5 extension interface");
        return SQLITE_ERROR;
    }
    return api->xCreateFunction(api, "bm25_df", NULL, bm25_df, NULL);
}
