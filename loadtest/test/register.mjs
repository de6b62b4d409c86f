// `node --import ./test/register.mjs --test …`: installs the hooks of k6-hooks.mjs.
import { register } from 'node:module';

register('./k6-hooks.mjs', import.meta.url);
