import { foldUsername, type Sql } from "@titanium/kit";
import type { TransactionSql } from "postgres";
import { excerpt, numberedSlug, randomColor, slugify } from "./content.js";

type Db = Sql | TransactionSql;

interface PostRow {
  id: number;
  title: string;
  content: string;
  author: string;
  created_at: Date;
  updated_at: Date;
  category_id: number;
  category_name: string;
  category_slug: string;
}

export interface PostOut {
  id: number;
  title: string;
  content: string;
  author: string;
  created_at: string;
  updated_at: string;
  category: { id: number; name: string; slug: string };
}
export type PostSummaryOut = Omit<PostOut, "content" | "updated_at"> & { excerpt: string };

export interface CategoryOut {
  id: number;
  name: string;
  slug: string;
  color: string;
  post_count: number;
}

export interface ListFilter {
  offset: number;
  limit: number;
  category?: string | undefined;
  author?: string | undefined;
  /** A search, as `BlogRepo.parseSearch` reads it. */
  q?: Search | undefined;
}

/**
 * The most words a search may look up: a search box's query is a few words, and each word is one more
 * index scan (for a prefix, over every indexed word it begins), so this bounds a search to a few list
 * reads' cost. Without it, a `q` of 100 one-letter words (within its 200 characters) cost about 20 list
 * reads. More is refused (422 naming `q`), not cut: a search that quietly dropped words would answer
 * another question than the one asked.
 */
export const SEARCH_TERMS_MAX = 8;
/** A word of this many characters or more also matches as a prefix; shorter ones match whole words only. */
export const SEARCH_PREFIX_MIN = 3;
/** Scripts whose one character is a syllable or a word (Korean, Chinese, Japanese kana). */
const SYLLABIC = /[\p{Script=Hangul}\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** A search (`q`) as PostgreSQL reads it: its tsquery, and how many words (lexemes) it looks up. */
export interface Search {
  tsquery: string;
  terms: number;
}

/**
 * Whether a word of a search also matches as a prefix: from 3 characters, or from 2 syllables (장애 finds
 * 장애가, 운영 finds 운영하며: a Hangul syllable carries what two or three letters do). A one- or two-letter
 * prefix (`a`, `de`) begins a large share of all indexed words: scanning them all is what made a search of
 * many short words expensive, and it found nothing a reader meant.
 */
export function isPrefixWord(word: string): boolean {
  const length = [...word].length;
  return length >= SEARCH_PREFIX_MIN || (length >= 2 && SYLLABIC.test(word));
}

/** A lexeme in a tsquery's text: quoted, a quote inside doubled (`'it''s'`); no operator holds a quote. */
const LEXEME = /'((?:[^']|'')*)'/g;

/**
 * The tsquery of a search's parsed text (what `websearch_to_tsquery` printed, see `BlogRepo.parseSearch`),
 * each word long enough made a prefix (`'word':*`, `isPrefixWord`), and how many words it has.
 */
export function prefixSearch(parsed: string): Search {
  let terms = 0;
  const tsquery = parsed.replace(LEXEME, (lexeme, word: string) => {
    terms++;
    return isPrefixWord(word.replaceAll("''", "'")) ? `${lexeme}:*` : lexeme;
  });
  return { tsquery, terms };
}

const toPost = (r: PostRow): PostOut => ({
  id: r.id,
  title: r.title,
  content: r.content,
  author: r.author,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
  category: { id: r.category_id, name: r.category_name, slug: r.category_slug },
});

/**
 * Namespace (first key) of the transaction advisory locks under which a category of one name (the second key:
 * a hash of its lower-cased name) is made, so two look-alike names ("Go", "go") cannot both be created.
 */
const CATEGORY_NAME_LOCK = 0x626c6f67; // "blog"

/**
 * SQL for posts and categories. Writes are filtered by id AND author.
 *
 * Categories and concurrency: a writer that files a post under a category holds that category's row with
 * `FOR KEY SHARE` from its look-up to its commit (`lockCategory`); the empty-category clean-up takes
 * `FOR UPDATE SKIP LOCKED` and checks emptiness again after it holds the rows (`purgeEmptyCategories`). So a
 * clean-up never removes a category a post is arriving in (it skips it, and cannot fail on the foreign key),
 * and a create that waited on a clean-up which removed its category makes the category again.
 */
export class BlogRepo {
  constructor(private readonly sql: Sql) {}

  /**
   * A search (`q`, NFC) as PostgreSQL reads it: the web-search syntax (`"a phrase"`, `or`, `-word`) read by
   * `websearch_to_tsquery` with the `simple` configuration (any script, no stemming), then the words long
   * enough made prefixes (`prefixSearch`). Korean attaches particles and endings to the word (쿠버네티스를,
   * 장애가, 사이드카에서), which the parser keeps as one lexeme, so a whole-word query never found the noun a
   * user types; a prefix also finds an English word's longer forms (deploy → deploying, deployment). The GIN
   * index serves prefixes. Its words are counted as PostgreSQL splits them (`a-b` is three: `a-b`, `a`, `b`).
   */
  async parseSearch(q: string): Promise<Search> {
    const [row] = await this.sql<{ parsed: string }[]>`select websearch_to_tsquery('simple', ${q})::text as parsed`;
    return prefixSearch(row?.parsed ?? "");
  }

  async list(f: ListFilter): Promise<{ items: PostSummaryOut[]; total: number }> {
    // Punctuation only: no word to look for, nothing found.
    if (f.q?.terms === 0) return { items: [], total: 0 };
    const sql = this.sql;

    const where = sql`
      where true
      ${f.category ? sql`and c.slug = ${f.category}` : sql``}
      ${f.author ? sql`and lower(p.author) = ${foldUsername(f.author)}` : sql``}
      ${f.q ? sql`and p.search @@ ${f.q.tsquery}::tsquery` : sql``}`;
    const rows = await sql<(PostRow & { total: number })[]>`
      select p.id, p.title, p.content, p.author, p.created_at, p.updated_at,
             c.id as category_id, c.name as category_name, c.slug as category_slug,
             count(*) over ()::int as total
      from posts p join categories c on c.id = p.category_id
      ${where}
      order by p.id desc
      limit ${f.limit} offset ${f.offset}`;
    let total = rows[0]?.total;
    if (total === undefined) {
      // Past the last page: the window count is not there, ask for it.
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from posts p join categories c on c.id = p.category_id ${where}`;
      total = row?.n ?? 0;
    }
    return {
      items: rows.map((r) => {
        const { content, updated_at: _u, ...rest } = toPost(r);
        return { ...rest, excerpt: excerpt(content) };
      }),
      total,
    };
  }

  async get(id: number): Promise<PostOut | undefined> {
    const [row] = await this.sql<PostRow[]>`
      select p.*, c.name as category_name, c.slug as category_slug
      from posts p join categories c on c.id = p.category_id where p.id = ${id}`;
    return row && toPost(row);
  }

  async create(p: { title: string; content: string; author: string; categoryName: string }): Promise<PostOut> {
    return this.sql.begin(async (tx) => {
      const categoryId = await this.categoryFor(tx, p.categoryName);
      const [row] = await tx<{ id: number }[]>`
        insert into posts (title, content, author, category_id)
        values (${p.title}, ${p.content}, ${p.author}, ${categoryId}) returning id`;
      return (await this.getIn(tx, row!.id))!;
    });
  }

  /**
   * Undefined when the post does not exist or is not the author's (indistinguishable, as the original); then
   * nothing is written: the post is held (`FOR UPDATE`) before a category is looked up or made.
   */
  async update(id: number, author: string, changes: { title?: string; content?: string; categoryName?: string }): Promise<PostOut | undefined> {
    return this.sql.begin(async (tx) => {
      const [own] = await tx<{ category_id: number }[]>`select category_id from posts where id = ${id} and author = ${author} for update`;
      if (!own) return undefined;
      const categoryId = changes.categoryName === undefined ? undefined : await this.categoryFor(tx, changes.categoryName);
      await tx`
        update posts set
          title = coalesce(${changes.title ?? null}, title),
          content = coalesce(${changes.content ?? null}, content),
          category_id = coalesce(${categoryId ?? null}::int, category_id),
          updated_at = now()
        where id = ${id}`;
      if (categoryId !== undefined && categoryId !== own.category_id) await this.purgeEmptyCategories(tx);
      return this.getIn(tx, id);
    });
  }

  async delete(id: number, author: string): Promise<boolean> {
    return this.sql.begin(async (tx) => {
      const rows = await tx`delete from posts where id = ${id} and author = ${author} returning id`;
      if (rows.length) await this.purgeEmptyCategories(tx);
      return rows.length > 0;
    });
  }

  async categories(): Promise<CategoryOut[]> {
    return this.sql<CategoryOut[]>`
      select c.id, c.name, c.slug, c.color, count(p.id)::int as post_count
      from categories c left join posts p on p.category_id = c.id
      group by c.id order by c.id`;
  }

  async postCount(): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from posts`;
    return row?.n ?? 0;
  }

  private async getIn(tx: Db, id: number): Promise<PostOut | undefined> {
    const [row] = await tx<PostRow[]>`
      select p.*, c.name as category_name, c.slug as category_slug
      from posts p join categories c on c.id = p.category_id where p.id = ${id}`;
    return row && toPost(row);
  }

  /**
   * Get-or-create by name (normalised by the API: `normalizeCategoryName`), matched case-insensitively: an
   * existing category keeps its own spelling (seeded ones first, then the oldest). A new category gets a
   * unique slug and a palette colour. The category is held until the transaction ends (see the class).
   */
  private async categoryFor(tx: Db, name: string): Promise<number> {
    const existing = await this.lockCategory(tx, name);
    if (existing !== undefined) return existing;
    // Makers of one name (in any case) queue here; the first one's category is there for the next.
    await tx`select pg_advisory_xact_lock(${CATEGORY_NAME_LOCK}::int, hashtext(lower(${name}::text)))`;
    const made = await this.lockCategory(tx, name);
    if (made !== undefined) return made;
    const base = slugify(name) || "category";
    for (let n = 1; ; n++) {
      const slug = numberedSlug(base, n);
      const [row] = await tx<{ id: number }[]>`
        insert into categories (name, slug, color) values (${name}, ${slug}, ${randomColor()})
        on conflict do nothing returning id`;
      if (row) return row.id;
      const raced = await this.lockCategory(tx, name); // the name was taken outside this path (not only the slug)
      if (raced !== undefined) return raced;
    }
  }

  /**
   * The category of this name (case-insensitive), held `FOR KEY SHARE` so no clean-up can remove it before
   * the transaction ends. Waits for a clean-up holding it; if that removed it, there is none (undefined).
   */
  private async lockCategory(tx: Db, name: string): Promise<number | undefined> {
    const [row] = await tx<{ id: number }[]>`
      select id from categories where lower(name) = lower(${name}::text)
      order by seeded desc, id limit 1
      for key share`;
    return row?.id;
  }

  /**
   * Categories left without posts disappear, except the seeded ones (the original deleted those too). Rows a
   * writer holds (a post is arriving in them) are skipped; the held ones are checked again for posts
   * committed while they were being taken, so the delete cannot meet a post (no foreign-key error that
   * would undo the caller's delete or move). Never waits, so it cannot deadlock with a writer.
   */
  private async purgeEmptyCategories(tx: Db): Promise<void> {
    const empty = await tx<{ id: number }[]>`
      select c.id from categories c
      where not c.seeded and not exists (select 1 from posts p where p.category_id = c.id)
      order by c.id
      for update skip locked`;
    if (!empty.length) return;
    await tx`
      delete from categories c
      where c.id in ${tx(empty.map((r) => r.id))} and not exists (select 1 from posts p where p.category_id = c.id)`;
  }
}
