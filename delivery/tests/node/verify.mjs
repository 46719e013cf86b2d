// Verify one delivery with the standardwebhooks npm package, as a Node receiver would.
// Reads {"secret": "whsec_...", "headers": {...}, "body": "<exact body>"} on stdin.
// Prints the verified payload as JSON and exits 0, or prints the error and exits 1.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, headers, body } = JSON.parse(input);
try {
  const payload = new Webhook(secret).verify(body, headers);
  process.stdout.write(JSON.stringify({ verified: true, payload }));
} catch (err) {
  process.stdout.write(JSON.stringify({ verified: false, error: String(err && err.message || err) }));
  process.exitCode = 1;
}
