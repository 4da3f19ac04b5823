import test from 'ava';
import { COLLECTION_FIELDS } from '../../../src/lib/collections.js';
import { BOOTCONFIGS, IMAGES, NETS, coerceValue } from '../../../src/tools/common/collection.js';

test('field types come from the API table: net dynamic=yes is sent as the boolean the API takes', (t) => {
  t.is(coerceValue(NETS, 'dynamic', 'yes'), true);
  t.is(coerceValue(NETS, 'prefix', '24'), 24);
  t.is(coerceValue(NETS, 'gateway', ''), null);
  t.is(NETS.singular, COLLECTION_FIELDS.nets.singular);
});

test('uploads are the upload fields: kernel and initramfs of a boot config, content of an image', (t) => {
  t.is(BOOTCONFIGS.fields.kernel, 'upload');
  t.is(BOOTCONFIGS.fields.initramfs, 'upload');
  t.is(IMAGES.fields.content, 'upload');
  t.is(BOOTCONFIGS.fields.image, 'nullable');
});
