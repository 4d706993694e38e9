// Seed 000 (bento), "Stream Chat Messages" example, copied verbatim.
// The one change: fetch needs an absolute URL in Node, so the seed's relative
// '/api/bento/chat/stream' is prefixed with BASE (from HUBBUB_URL). The seed
// labels it typescript; it is plain JS, and .mjs allows its top-level await.
const BASE = process.env.HUBBUB_URL;

const response = await fetch(BASE + '/api/bento/chat/stream', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    messages: [
      { role: 'user', content: 'Explain quantum computing' }
    ],
    model: 'advanced-llm-model',
    stream: true
  })
});

const reader = response.body?.getReader();
const decoder = new TextDecoder();

while (true) {
  const { done, value } = await reader.read();
  if (done) break;
  
  const chunk = decoder.decode(value);
  const lines = chunk.split('\n');
  
  for (const line of lines) {
    if (line.startsWith('data: ')) {
      const data = line.slice(6);
      if (data === '[DONE]') {
        console.log('Stream complete');
      } else if (data) {
        const parsed = JSON.parse(data);
        process.stdout.write(parsed.content);
      }
    }
  }
}
