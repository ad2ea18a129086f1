/**
 * The words of an invite code (code.ts): 256 common English words, written for this project,
 * each 4 to 8 letters of a to z, chosen to be easy to say and to spell and unlike each other
 * when read aloud (no homophones such as sea/see or flour/flower). 256 words make each word
 * worth exactly 8 bits. Sorted, so that a word's index is its value. Portable.
 */
export const WORDLIST: readonly string[] = Object.freeze([
  'acorn', 'almond', 'amber', 'anchor', 'apple', 'arrow', 'autumn', 'badge', 'badger', 'bagel',
  'bamboo', 'banana', 'basket', 'beacon', 'beetle', 'biscuit', 'blanket', 'blossom', 'bottle',
  'bracelet', 'brave', 'bridge', 'bright', 'bucket', 'buffalo', 'bumpy', 'butter', 'button',
  'cabin', 'cactus', 'calm', 'camera', 'candle', 'canoe', 'canyon', 'carpet', 'carrot', 'castle',
  'cement', 'cherry', 'chimney', 'cinnamon', 'circle', 'clever', 'clover', 'cobalt', 'coffee',
  'comet', 'compass', 'cookie', 'copper', 'cotton', 'cozy', 'crayon', 'cricket', 'crisp', 'crown',
  'crystal', 'curly', 'cushion', 'daisy', 'dolphin', 'donkey', 'dragon', 'drum', 'dusty', 'eager',
  'eagle', 'early', 'elbow', 'engine', 'falcon', 'fancy', 'feather', 'ferret', 'fiddle',
  'flamingo', 'fluffy', 'forest', 'fossil', 'fountain', 'frosty', 'gadget', 'garden', 'garlic',
  'gentle', 'giant', 'ginger', 'giraffe', 'glacier', 'glossy', 'goblet', 'golden', 'goose',
  'gravel', 'guitar', 'hammer', 'hamster', 'happy', 'harbor', 'harvest', 'hazel', 'hedgehog',
  'helmet', 'hollow', 'honey', 'humble', 'iceberg', 'igloo', 'island', 'jacket', 'jelly', 'jigsaw',
  'jolly', 'jungle', 'kayak', 'kettle', 'kitten', 'kiwi', 'koala', 'ladder', 'lagoon', 'lantern',
  'lemon', 'lively', 'lizard', 'lobster', 'locket', 'lucky', 'magnet', 'mango', 'maple', 'marble',
  'meadow', 'mellow', 'meteor', 'mighty', 'mirror', 'misty', 'mitten', 'monkey', 'mountain',
  'muffin', 'napkin', 'nectar', 'needle', 'nickel', 'noble', 'noodle', 'nutmeg', 'oatmeal',
  'ocean', 'olive', 'orange', 'orbit', 'orchid', 'origami', 'otter', 'oyster', 'paddle', 'pancake',
  'panda', 'parrot', 'peanut', 'pebble', 'pelican', 'pencil', 'penguin', 'pepper', 'piano',
  'pickle', 'pigeon', 'pillow', 'pirate', 'planet', 'pocket', 'potato', 'pretzel', 'pumpkin',
  'purple', 'puzzle', 'quiet', 'quilt', 'rabbit', 'raccoon', 'radio', 'radish', 'rapid', 'raven',
  'ribbon', 'river', 'robot', 'rocket', 'rusty', 'saddle', 'salmon', 'saucer', 'sausage', 'scarf',
  'seagull', 'shadow', 'shiny', 'silky', 'silver', 'sketch', 'sleepy', 'smooth', 'snowy', 'spider',
  'sponge', 'spoon', 'spruce', 'squirrel', 'statue', 'sturdy', 'summer', 'sunny', 'sunset',
  'sweater', 'swift', 'teapot', 'thimble', 'thunder', 'tidy', 'tiger', 'tiny', 'toaster', 'tomato',
  'tractor', 'trophy', 'trumpet', 'tulip', 'tundra', 'tunnel', 'turtle', 'umbrella', 'vanilla',
  'velvet', 'violin', 'volcano', 'waffle', 'wagon', 'walnut', 'walrus', 'weasel', 'whistle',
  'window', 'windy', 'winter', 'witty', 'wizard', 'wombat', 'yacht', 'yogurt', 'zebra', 'zesty',
]);
