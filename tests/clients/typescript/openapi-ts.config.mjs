// @hey-api/openapi-ts's settings for the client test (tests/clients/run.sh typescript): the
// fetch client, and `.js` in relative imports so that Node runs the compiled ES modules.
export default {
  input: process.env.MESHINTENT_OPENAPI,
  output: { path: 'generated', importFileExtension: '.js' },
  plugins: ['@hey-api/client-fetch'],
};
