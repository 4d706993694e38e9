// Seed 002 (conversations), "Stream Message": POST /api/chat/stream.
// The seed gives no client code, only the request body ("Same as /api/chat",
// copied verbatim from its "Send Message" example) and the SSE format
// ({"type": "start" | "content" | "end"}). So this is NOT a copy: it is the
// minimal fetch + reader loop, written in the style of the other seeds' examples.
// Like them, it prefixes the relative URL with BASE (from HUBBUB_URL).
const BASE = process.env.HUBBUB_URL;

const response = await fetch(BASE + '/api/chat/stream', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    "message": "Hello, how are you?",
    "userId": "123456789",
    "groupId": "987654321",
    "preset": "default"
  })
});

const reader = response.body.getReader();
const decoder = new TextDecoder();

while (true) {
  const { done, value } = await reader.read();
  if (done) break;

  const chunk = decoder.decode(value);
  const lines = chunk.split('\n');

  for (const line of lines) {
    if (line.startsWith('data: ')) {
      const data = JSON.parse(line.slice(6));
      switch (data.type) {
        case 'start':
          console.log('Conversation:', data.conversationId);
          break;
        case 'content':
          process.stdout.write(data.text);
          break;
        case 'end':
          console.log('\nUsage:', JSON.stringify(data.usage));
          break;
        case 'error':
          console.error('Error:', data.code, data.message);
          break;
      }
    }
  }
}
