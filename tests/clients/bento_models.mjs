// Seed 000 (bento), "List Available Models" example, copied verbatim.
// The one change: fetch needs an absolute URL in Node, so the seed's relative
// '/api/bento/chat/models' is prefixed with BASE (from HUBBUB_URL). The seed
// labels it typescript; it is plain JS, and .mjs allows its top-level await.
const BASE = process.env.HUBBUB_URL;

const response = await fetch(BASE + '/api/bento/chat/models');
const { models } = await response.json();

// Display in a select dropdown
models.forEach(model => {
  console.log(`${model.name} (${model.id})`);
});
