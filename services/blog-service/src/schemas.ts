import { pgText, z } from "@titanium/kit";

export const CategoryRef = z.object({ id: z.number().int(), name: z.string(), slug: z.string() }).openapi("CategoryRef");

export const PostSummary = z
  .object({
    id: z.number().int(),
    title: z.string(),
    author: z.string(),
    created_at: z.string(),
    excerpt: z.string(),
    category: CategoryRef,
  })
  .openapi("PostSummary");

export const Post = z
  .object({
    id: z.number().int(),
    title: z.string(),
    content: z.string(),
    author: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    category: CategoryRef,
  })
  .openapi("Post");

export const Category = z
  .object({ id: z.number().int(), name: z.string(), slug: z.string(), color: z.string(), post_count: z.number().int() })
  .openapi("Category");

export const ListQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  category: pgText().max(50).optional().openapi({ description: "category slug" }),
  author: pgText().max(100).optional(),
  q: pgText().trim().min(1).max(200).optional().openapi({ description: "full-text search in title and content" }),
});

export const PostId = z.object({ id: z.coerce.number().int().min(1).max(2_147_483_647) });

export const CreatePost = z
  .object({
    title: pgText().min(1).max(120),
    content: pgText().min(1).max(20_000),
    category_name: pgText().trim().min(1).max(50),
  })
  .openapi("CreatePost");

export const PatchPost = z
  .object({
    title: pgText().min(1).max(120).optional(),
    content: pgText().min(1).max(20_000).optional(),
    category_name: pgText().trim().min(1).max(50).optional(),
  })
  .openapi("UpdatePost");
